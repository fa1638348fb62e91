"""kill -9 of the driver JVM under a running context: stderr says so at once, the next Orca call raises
`EngineDied` with the JVM's last lines, and an init with the same arguments then starts a new context."""

import os
import signal

import pytest

from orca_core import OrcaContext, init_orca_context, state, stop_orca_context
from orca_core.errors import EngineDied
from orca_core.ports import wait_for

ARGS = {"cluster_mode": "local", "cores": 1, "memory": "1g"}
LAST_WORDS = "last words of the driver JVM"


@pytest.fixture
def killed(capfd):
    """A running context whose driver JVM was killed after writing LAST_WORDS to stderr, and the test's stderr
    once the death was reported."""
    sc = init_orca_context(**ARGS)
    gateway = state.current().spark.gateway
    sc._jvm.java.lang.System.err.println(LAST_WORDS)
    os.kill(gateway.proc.pid, signal.SIGKILL)
    # read stderr once its writers are done (capfd drops what is written while it reads)
    wait_for(lambda: not gateway.watcher.is_alive(), 20, "the death of the driver JVM to be reported")
    err = capfd.readouterr().err
    yield sc, gateway.proc, err
    stop_orca_context()


def _fresh(old_sc, old_jvm):
    """The context init starts now: a new SparkContext on a new JVM that runs jobs; again, the same one."""
    fresh = init_orca_context(**ARGS)
    assert fresh is not old_sc
    new_jvm = state.current().spark.gateway.proc
    assert new_jvm.pid != old_jvm.pid and new_jvm.poll() is None
    assert fresh.parallelize(range(10), 2).sum() == 45
    assert init_orca_context(**ARGS) is fresh  # alive: the same context again
    return new_jvm


def test_init_after_the_jvm_died_raises_once_then_starts_a_new_context(killed):
    sc, jvm, err = killed
    assert f"{LAST_WORDS}\n" in err  # the JVM's stderr reaches this process's stderr
    said = err.split(f"orca: the Spark driver JVM died unexpectedly: java (pid {jvm.pid}, killed by SIGKILL)", 1)[1]
    assert said.startswith("; last lines of its stderr:\n") and f"{LAST_WORDS}\n" in said
    with pytest.raises(EngineDied) as died:
        init_orca_context(**ARGS)
    message = str(died.value)
    assert f"the Spark driver JVM died unexpectedly: java (pid {jvm.pid}, killed by SIGKILL)" in message
    assert "init_orca_context() starts a new context" in message
    assert LAST_WORDS in message  # the JVM's last lines on stderr
    assert state.running is None  # what was left of the dead context is stopped
    new_jvm = _fresh(sc, jvm)
    stop_orca_context()
    wait_for(lambda: new_jvm.poll() is not None, 20, "the new driver JVM to exit at stop")


def test_a_getter_raises_and_the_next_init_starts_a_new_context(killed):
    sc, jvm, _ = killed
    with pytest.raises(EngineDied, match=rf"the Spark driver JVM died unexpectedly: java \(pid {jvm.pid}, killed by "
                                         r"SIGKILL\).*init_orca_context\(\) starts a new context"):
        OrcaContext.get_spark_context()
    _fresh(sc, jvm)  # the death was raised already: init does not raise it again


def test_stop_after_the_jvm_died_is_clean(killed):
    sc, jvm, _ = killed
    stop_orca_context()  # no error: the SparkContext of a dead JVM is cleared
    assert state.running is None and not state.deaths
    _fresh(sc, jvm)
