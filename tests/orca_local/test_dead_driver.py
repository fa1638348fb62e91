"""A driver JVM killed under a running context: the next init with the same arguments starts anew."""

import os
import signal

import psutil

from orca_core import init_orca_context, state, stop_orca_context
from orca_core.ports import wait_for

ARGS = {"cluster_mode": "local", "cores": 1, "memory": "1g"}


def test_init_after_the_driver_jvm_died_starts_a_new_context(capfd):
    sc = init_orca_context(**ARGS)
    try:
        jvm = state.current().spark.gateway.proc
        os.kill(jvm.pid, signal.SIGKILL)
        wait_for(lambda: jvm.poll() is not None, 20, "the driver JVM to die")
        capfd.readouterr()
        fresh = init_orca_context(**ARGS)
        assert "the driver JVM of the running context died (exit status -9)" in capfd.readouterr().err
        assert fresh is not sc
        new_jvm = state.current().spark.gateway.proc
        assert new_jvm.pid != jvm.pid and psutil.pid_exists(new_jvm.pid)
        assert fresh.parallelize(range(10), 2).sum() == 45
        assert init_orca_context(**ARGS) is fresh  # alive: the same context again
    finally:
        stop_orca_context()
    wait_for(lambda: new_jvm.poll() is not None, 20, "the new driver JVM to exit at stop")
