"""The shared Spark-cluster layer: the README's example plugin built on it, and the meaning of each
shared option, the same in every mode built on it."""

import re
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from orca_core import plan_orca_context
from orca_core.errors import ConfigError
from orca_core.spark_cluster import SparkClusterBackend
from orca_core.testing import ClusterModeConformance

EXAMPLE = Path(__file__).parent / "plugin_example" / "orca_team.py"
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
def team(fake_distribution):
    fake_distribution("orca-team", {"team": "orca_team"}, {"orca_team.py": EXAMPLE.read_text()})


def test_the_readme_shows_the_example_plugin_as_it_is_tested():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert EXAMPLE.read_text() in blocks


@pytest.mark.usefixtures("team")
class TestTeamPlugin(ClusterModeConformance):
    cluster_mode = "team"
    options = {"master": "spark://10.0.0.1:7077"}


def test_the_example_gets_sizing_shipping_py_files_and_ray_from_the_layer(team, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helpers.py").write_text("X = 1\n")
    plan = plan_orca_context(cluster_mode="team", master="spark://10.0.0.1:7077", cores=2, memory="3g",
                             num_nodes=2, pool="nightly", ship_python_env=True, extra_python_lib=str(lib),
                             init_ray_on_spark=True, driver_memory="1g", conf={"spark.executor.cores": "1"})
    conf = plan.spark_conf
    assert plan.master == "spark://10.0.0.1:7077"
    assert (conf["spark.executor.instances"], conf["spark.executor.memory"]) == ("2", "3072m")
    assert conf["spark.executor.cores"] == "1"  # the user's conf wins
    assert (conf["spark.cores.max"], conf["spark.scheduler.pool"]) == ("4", "nightly")
    assert conf["spark.driver.memory"] == "1024m"
    assert conf["spark.archives"] == f"{plan.python_env.local}#python_env"
    assert conf["spark.pyspark.python"] == "./python_env/bin/python"
    assert conf["spark.pyspark.driver.python"] == sys.executable
    assert plan.py_files[0].endswith(".zip") and conf["spark.submit.pyFiles"] == plan.py_files[0]
    assert (plan.ray.kind, plan.ray.num_nodes) == ("on-spark", 2)
    assert "spark.executor.memoryOverhead" not in conf  # a standalone executor is not a container


def test_the_example_without_a_master_is_a_clear_error(team, monkeypatch):
    monkeypatch.delenv("TEAM_SPARK_MASTER", raising=False)
    with pytest.raises(ConfigError, match="TEAM_SPARK_MASTER"):
        plan_orca_context(cluster_mode="team")


class _Containers(SparkClusterBackend):
    containers = True

    def plan(self):
        return self.spark_plan("spark://10.0.0.1:7077")


def _backend(cls=_Containers, cores=2, memory="2g", num_nodes=2, init_ray_on_spark=False, extra_python_lib=None,
             **options):
    """A backend of `cls` for a request made as init_orca_context makes it, with the layer's options."""
    from orca_core import pylib
    from orca_core.backend import Request
    from orca_core.resources import Resources
    from orca_core.spark_cluster import CONTAINER_OPTIONS, SPARK_CLUSTER_OPTIONS

    defaults = {o.name: o.default for o in (*SPARK_CLUSTER_OPTIONS, *CONTAINER_OPTIONS)}
    return cls(Request("test", Resources.parse(cores, memory, num_nodes), init_ray_on_spark=init_ray_on_spark,
                       py_files=pylib.resolve(extra_python_lib), options={**defaults, **options}))


@pytest.mark.parametrize("extra, ray_mb", [(None, 3 * 1024 * 3 // 10), ("2g", 2048)])
def test_ray_memory_is_added_to_spark_overhead_and_sizes_the_object_store(extra, ray_mb):
    plan = _backend(memory="3g", init_ray_on_spark=True, extra_executor_memory_for_ray=extra).plan()
    assert plan.spark_conf["spark.executor.memoryOverhead"] == f"{384 + ray_mb}m"  # max(384m, 10% of 3g) = 384m
    assert plan.ray.object_store_memory >> 20 == ray_mb


def test_a_given_object_store_size_wins():
    plan = _backend(memory="3g", init_ray_on_spark=True, object_store_memory="512m").plan()
    assert plan.ray.object_store_memory == 512 << 20
    with pytest.raises(ConfigError, match=r"1024 MiB of object store .* is 921 MiB"):  # 30% of 3g: the room for Ray
        _backend(memory="3g", init_ray_on_spark=True, object_store_memory="1g").plan()


def test_no_ray_no_extra_overhead():
    assert "spark.executor.memoryOverhead" not in _backend(memory="3g").plan().spark_conf


@pytest.mark.parametrize("given, start", [({}, "3"), ({"spark.dynamicAllocation.initialExecutors": "1"}, "1"),
                                          ({"spark.dynamicAllocation.maxExecutors": "2"}, "2")])
def test_with_dynamic_allocation_num_nodes_is_where_spark_starts_unless_conf_says(team, given, start):
    dynamic = {"spark.dynamicAllocation.enabled": "true", **given}
    conf = plan_orca_context(cluster_mode="team", master="spark://10.0.0.1:7077", num_nodes=3, conf=dynamic).spark_conf
    assert conf["spark.dynamicAllocation.initialExecutors"] == start
    assert "spark.executor.instances" not in conf  # Spark would start at least that many, whatever conf says


def test_a_max_executors_that_is_no_number_is_refused(team):
    with pytest.raises(ConfigError, match="maxExecutors='two' is not a whole number"):
        plan_orca_context(cluster_mode="team", master="spark://10.0.0.1:7077",
                          conf={"spark.dynamicAllocation.enabled": "true", "spark.dynamicAllocation.maxExecutors": "two"})


def test_penv_archive_and_ship_python_env_are_exclusive(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        _backend(penv_archive=str(tmp_path / "env.tar.gz"), ship_python_env=True).plan()


def test_a_penv_archive_uri_ships_as_it_is():
    plan = _backend(penv_archive="hdfs:///envs/team.tar.gz").plan()
    assert plan.spark_conf["spark.archives"] == "hdfs:///envs/team.tar.gz#python_env"
    assert (plan.python_env.local, plan.python_env.key) == (None, None)


def test_a_penv_archive_that_is_no_archive_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not an archive"):
        _backend(penv_archive=str(tmp_path / "env.txt")).plan()


class _Distributing(_Containers):
    distributes_secret = True


class _Authenticating(_Distributing):
    authenticates_by_default = True


def test_authentication_is_planned_only_where_the_cluster_manager_distributes_sparks_secret():
    assert "spark.authenticate" not in _backend().plan().spark_conf
    assert "spark.authenticate" not in _backend(spark_encryption=True).plan().spark_conf  # no secret to use
    assert "spark.authenticate" not in _backend(_Distributing).plan().spark_conf
    conf = _backend(_Distributing, spark_encryption=True).plan().spark_conf
    assert (conf["spark.authenticate"], conf["spark.network.crypto.enabled"]) == ("true", "true")
    conf = _backend(_Authenticating).plan().spark_conf
    assert conf["spark.authenticate"] == "true" and "spark.network.crypto.enabled" not in conf
    assert not [key for key in conf if "secret" in key]


def _planned(conf, **options):
    backend = _backend(_Authenticating, **options)
    backend.request = replace(backend.request, conf=conf)
    return backend.plan().spark_conf


def test_the_users_conf_and_an_external_shuffle_service_decide_over_the_default():
    assert _planned({"spark.authenticate": "false"})["spark.authenticate"] == "false"
    assert "spark.authenticate" not in _planned({"spark.shuffle.service.enabled": " TRUE"})
    with pytest.raises(ConfigError, match="spark.shuffle.service.enabled=true"):
        _planned({"spark.shuffle.service.enabled": "true"}, spark_encryption=True)


class _Submitted(SparkClusterBackend):
    deploy_mode = "cluster"

    def plan(self):
        return self.submit_plan(self.spark_plan("spark://10.0.0.1:7077"))


def test_the_cluster_deploy_mode_submits_this_program_with_directories_as_zips(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helpers.py").write_text("X = 1\n")
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    monkeypatch.setattr(sys, "argv", [str(script), "--epochs", "3"])
    plan = _backend(_Submitted, extra_python_lib=str(lib)).plan()
    argv = list(plan.submit_argv)
    assert plan.spark is None and argv[0].endswith("/bin/spark-submit")
    assert argv[argv.index("--deploy-mode") + 1] == "cluster"
    zipped = argv[argv.index("--py-files") + 1]
    assert zipped.endswith(".zip") and zipped != str(lib)
    assert argv[-3:] == [str(script), "--epochs", "3"]
    assert "spark.pyspark.driver.python" not in plan.spark_conf  # the driver runs on the cluster


def test_the_cluster_deploy_mode_needs_a_script(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["-c"])
    with pytest.raises(ConfigError, match="script file"):
        _backend(_Submitted).plan()


def test_the_submitted_zip_holds_the_directory(tmp_path):
    from orca_core import pylib

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helpers.py").write_text("X = 1\n")
    shipped = pylib.materialize(str(lib))
    assert shipped == _backend(extra_python_lib=str(lib)).py_files()[0]
    assert zipfile.ZipFile(shipped).namelist() == ["helpers.py"]  # the directory is the import root


def test_in_containers_the_object_store_takes_what_the_heap_leaves_of_the_ray_memory():
    plan = _backend(memory="3g", init_ray_on_spark=True, extra_executor_memory_for_ray="2g",
                    ray_node_memory="512m").plan()
    assert (plan.ray.heap_memory, plan.ray.object_store_memory) == (512 << 20, 1536 << 20)
    with pytest.raises(ConfigError, match=r"1024 MiB of heap .* and 1536 MiB of object store .*"
                                          r"extra_executor_memory_for_ray\) is 2048 MiB"):
        _backend(memory="3g", init_ray_on_spark=True, extra_executor_memory_for_ray="2g", ray_node_memory="1g",
                 object_store_memory="1536m").plan()
    with pytest.raises(ConfigError, match="2048 MiB of heap"):
        _backend(memory="3g", init_ray_on_spark=True, extra_executor_memory_for_ray="2g", ray_node_memory="2g").plan()


def test_in_containers_gpus_need_an_executor_discovery_script():
    with pytest.raises(ConfigError, match="spark.executor.resource.gpu.discoveryScript"):
        _backend(init_ray_on_spark=True, ray_node_gpus=1).plan()
    conf = {"spark.executor.resource.gpu.discoveryScript": "/opt/spark/getGpus.sh"}
    from dataclasses import replace

    backend = _backend(init_ray_on_spark=True, ray_node_gpus=2)
    backend.request = replace(backend.request, conf=conf)
    plan = backend.plan()
    assert plan.spark_conf["spark.executor.resource.gpu.amount"] == "2"
    assert "spark.worker.resource.gpu.amount" not in plan.spark_conf


def test_secrets_in_conf_stay_off_the_submit_command_line(monkeypatch, tmp_path):
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    monkeypatch.setattr(sys, "argv", [str(script)])
    plan = _backend(_Submitted).plan()
    conf = {**plan.spark_conf, "spark.authenticate.secret": "hush-1", "spark.hadoop.fs.s3a.secret.key": "hush-2"}
    plan = _backend(_Submitted).submit_plan(replace(plan, spark_conf=conf))
    assert plan.spark_conf["spark.hadoop.fs.s3a.secret.key"] == "hush-2"
    assert not [arg for arg in plan.submit_argv if "hush" in arg or arg == "--conf"]


PROBE = """
import os, sys, time
from pyspark import SparkContext

conf = SparkContext.getOrCreate().getConf()
print("PROBE", conf.get("spark.orca.probe"), conf.get("spark.authenticate.secret"), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def test_spark_submit_reads_the_conf_from_a_private_file_it_removes(tmp_path):
    import os

    import psutil

    from orca_core import java, spark_submit

    script, go = tmp_path / "probe.py", tmp_path / "go"
    script.write_text(PROBE)
    argv = spark_submit.submit_argv(spark_submit.spark_home(), "local[1]", "client", "probe", (), str(script),
                                    [str(go)])
    secret = "s3cr3t-" + os.urandom(8).hex()
    submission = spark_submit.Submission(argv, {**os.environ, **java.for_spark(), "PYSPARK_PYTHON": sys.executable},
                                         {"spark.orca.probe": "from-the-file", "spark.authenticate.secret": secret})
    seen = {}

    def on_line(line):
        if line.startswith("PROBE"):
            seen["probe"] = line.split()[1:]
            seen["mode"] = os.stat(submission.properties).st_mode & 0o777
            seen["argv"] = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
                            if secret in " ".join(p.info["cmdline"] or [])]
            go.touch()

    assert submission.run(on_line) == 0, "".join(submission.tail)
    assert seen["probe"] == ["from-the-file", secret]
    assert seen["mode"] == 0o600
    assert seen["argv"] == []
    assert not os.path.exists(submission.properties)
