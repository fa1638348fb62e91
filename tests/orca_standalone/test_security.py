"""The standalone cluster Orca starts admits only applications holding the context's secret, and no
secret of a Ray-on-Spark context shows on any process's command line."""

import psutil
import pytest

from orca_core import init_orca_context, plan_orca_context, state, stop_orca_context
from orca_core.errors import ConfigError
from orca_core.spark_security import SECRET
from orca_core.testing import spark_admits


@pytest.fixture(scope="module")
def cluster():
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=1, init_ray_on_spark=True,
                           include_webui=False)
    yield sc
    stop_orca_context()


def _secrets() -> dict[str, str]:
    ctx = state.current()
    ray = ctx.ray
    return {"spark secret": ctx.plan.spark_conf[SECRET], "ray token": ray.head.token,
            "control secret": ray.control.secret}


def test_plan_authenticates_without_showing_a_secret():
    plan = plan_orca_context(cluster_mode="standalone", cores=1, memory="1g", spark_encryption=True)
    assert plan.spark_conf["spark.authenticate"] == "true"
    assert plan.spark_conf["spark.network.crypto.enabled"] == "true"
    assert plan.spark_conf["spark.io.encryption.enabled"] == "true"
    assert SECRET not in plan.spark_conf


def test_encryption_of_a_cluster_orca_does_not_start_is_refused():
    with pytest.raises(ConfigError, match="spark_encryption"):
        plan_orca_context(cluster_mode="standalone", master="spark://head:7077", spark_encryption=True)


def test_the_context_itself_runs_jobs(cluster):
    assert cluster.parallelize(range(10), 2).sum() == 45
    assert cluster.getConf().get("spark.authenticate") == "true"


def test_an_application_without_the_secret_is_refused(cluster):
    assert not spark_admits(cluster.master)


def test_an_application_with_the_secret_is_admitted(cluster):
    assert spark_admits(cluster.master, _secrets()["spark secret"])


def test_no_secret_on_any_command_line(cluster):
    import ray

    assert ray.get(ray.remote(lambda: 1).remote()) == 1
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        found += [(name, proc.info["pid"], line[:200]) for name, value in _secrets().items() if value in line]
    assert not found
    assert len([p for p in psutil.process_iter(["cmdline"])
                if "raylet" in " ".join(p.info["cmdline"] or [])]) >= 2  # the scan saw the Ray nodes
