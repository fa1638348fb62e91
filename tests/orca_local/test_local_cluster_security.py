"""A `local-cluster[...]` master (inside the driver JVM, on a loopback port any local user can open) admits
only applications holding the context's secret, which shows on no process's command line."""

import ipaddress
from urllib.parse import urlsplit

import psutil
import pytest

from orca_core import init_orca_context, state, stop_orca_context
from orca_core.spark_security import SECRET
from orca_core.testing import spark_admits


@pytest.fixture(scope="module")
def cluster():
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", conf={"spark.master": "local-cluster[1,1,1024]"})
    yield sc
    stop_orca_context()


def _master(sc) -> str:
    """The spark:// address of the master the local-cluster runs in the driver JVM (Spark keeps it private)."""
    backend = sc._jsc.sc().schedulerBackend()
    field = backend.getClass().getDeclaredField("masters")
    field.setAccessible(True)
    (master,) = list(field.get(backend))
    return master


def test_the_master_listens_on_loopback(cluster):
    master = _master(cluster)
    assert master.startswith("spark://")
    assert ipaddress.ip_address(urlsplit(master).hostname).is_loopback


def test_an_application_without_the_secret_is_refused(cluster):
    assert not spark_admits(_master(cluster))


def test_an_application_with_the_secret_is_admitted(cluster):
    assert spark_admits(_master(cluster), state.current().plan.spark_conf[SECRET])


def test_the_secret_is_on_no_command_line(cluster):
    assert cluster.parallelize(range(10), 2).sum() == 45  # the executor runs
    secret = state.current().plan.spark_conf[SECRET]
    lines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not [line[:200] for line in lines if secret in line]
    assert any("CoarseGrainedExecutorBackend" in line for line in lines)  # the scan saw the executor
