"""The archive layout and `python_env` conf of a yarn plan, run for real: Spark's `spark.archives`
(the mechanism behind spark.yarn.dist.archives) unpacks the environment for a local-cluster executor,
whose Python workers then run `./python_env/bin/python`. One Spark start."""

from __future__ import annotations

import os
import sys
import tarfile
import venv

from orca_core import plan_orca_context

MARKER = "orca_yarn_probe_marker"


def _archive(tmp_path) -> tuple[str, bool]:
    """The packed environment: orca_core.shipping's when this orca-core has it, else a small venv packed by hand
    (no pip; its site-packages reaches this venv's packages through a .pth file, and holds a marker module)."""
    try:
        from orca_core.shipping import pack_environment
    except ImportError:
        pack_environment = None
    site = os.path.join("lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")
    if pack_environment is not None:
        return str(pack_environment(keep_spark_jars=False, compress=True).path), False
    env = tmp_path / "small-env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env)
    here = next(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(os.path.join(p, "pyspark")))
    (env / site / "zz_orca_base.pth").write_text(here + "\n")
    (env / site / f"{MARKER}.py").write_text("FROM = 'the shipped archive'\n")
    path = tmp_path / "env.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in sorted(os.listdir(env)):
            tar.add(env / name, arcname=name)
    return str(path), True


def test_executors_run_the_shipped_python_env(tmp_path, hadoop_conf, spark_home, monkeypatch):
    from pyspark import SparkConf, SparkContext

    plan = plan_orca_context(cluster_mode="yarn-client", cores=1, memory="1g", hadoop_conf=str(hadoop_conf),
                             spark_home=str(spark_home), penv_archive="hdfs:///envs/e.tar.gz")
    archive, has_marker = _archive(tmp_path)
    # the plan's archive entry with its hdfs:// location swapped for the local file, everything else as planned
    (entry,) = plan.archives
    _, _, name = entry.partition("#")
    conf = SparkConf(loadDefaults=False).setAll([
        ("spark.archives", f"{archive}#{name}"),
        ("spark.pyspark.python", plan.spark_conf["spark.pyspark.python"]),
        ("spark.pyspark.driver.python", plan.spark_conf["spark.pyspark.driver.python"]),
        ("spark.driver.host", "127.0.0.1"),
        ("spark.driver.bindAddress", "127.0.0.1"),
        ("spark.ui.enabled", "false"),
        ("spark.executor.memory", "512m"),
    ]).setMaster("local-cluster[1,1,1024]")
    monkeypatch.setenv("PYSPARK_PYTHON", plan.env["PYSPARK_PYTHON"])
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")

    def _probe(_):  # nested: pickled by value for the worker
        import os
        import sys

        try:
            import orca_yarn_probe_marker as marker

            found = marker.FROM
        except ImportError:
            found = None
        return sys.executable, os.getcwd(), found

    sc = SparkContext(conf=conf)
    try:
        executable, cwd, found = sc.parallelize([0], 1).map(_probe).collect()[0]
    finally:
        sc.stop()
    assert name == "python_env"
    assert executable == os.path.join(cwd, "python_env", "bin", "python")
    assert os.path.isfile(os.path.join(cwd, "python_env", "bin", "python"))
    if has_marker:
        assert found == "the shipped archive"
