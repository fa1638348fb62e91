"""ship_python_env on a real two-worker standalone cluster: executors and Ray nodes run the shipped env."""

import os
import sys

import pytest

from orca_core import OrcaError, init_orca_context, plan_orca_context, stop_orca_context


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    (root / "onlyhere.py").write_text("WHERE = 'shipped with extra_python_lib'\n")
    old = os.environ.get("ORCA_CACHE_DIR")
    os.environ["ORCA_CACHE_DIR"] = str(root / "cache")
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, ship_python_env=True,
                           init_ray_on_spark=True, include_webui=False, extra_python_lib=str(root / "onlyhere.py"))
    yield sc
    stop_orca_context()
    if old is None:
        os.environ.pop("ORCA_CACHE_DIR", None)
    else:
        os.environ["ORCA_CACHE_DIR"] = old


def _where():
    """Where a task runs; made inside each test so that it is pickled by value, not by module name."""

    def where():
        import sys

        import onlyhere

        return sys.executable, sys.prefix, onlyhere.WHERE

    return where


def test_spark_tasks_run_the_unpacked_archive(shipped):
    where = _where()
    seen = shipped.parallelize(range(4), 4).map(lambda _: where()).collect()
    for executable, prefix, where in seen:
        assert "/python_env/" in executable + "/", executable
        assert not prefix.startswith(sys.prefix + os.sep) and prefix != sys.prefix, prefix
        assert "/standalone/worker-" in prefix and prefix.endswith("/python_env"), prefix  # the executor's work dir
        assert where == "shipped with extra_python_lib"
    assert len({e for e, _, _ in seen}) == 2  # one unpacked archive per executor


def test_ray_on_spark_tasks_run_the_shipped_env_and_see_extra_libs(shipped):
    import ray

    executable, prefix, where = ray.get(ray.remote(_where()).remote())
    assert "python_env" in executable and "python_env" in prefix
    assert where == "shipped with extra_python_lib"


def test_plan_names_the_archive_without_packing(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "empty-cache"))
    plan = plan_orca_context(cluster_mode="standalone", master="spark://10.0.0.1:7077", ship_python_env=True)
    assert plan.spark_conf["spark.pyspark.python"] == "./python_env/bin/python"
    from orca_core.shipping import environment_key

    _, key = environment_key()
    assert plan.archives[0] == f"{plan.python_env.local}#python_env"
    assert plan.python_env.local.startswith(str(tmp_path / "empty-cache")) and key in plan.python_env.local
    assert not any((tmp_path / "empty-cache").rglob("*.tar*"))


def test_missing_penv_archive_is_an_error_before_anything_starts(tmp_path):
    with pytest.raises(OrcaError, match="penv_archive"):
        plan_orca_context(cluster_mode="standalone", master="spark://10.0.0.1:7077",
                          penv_archive=str(tmp_path / "nope.tar.gz"))
