"""BigDL programs on Orca with only their import changed (orca_core.compat.bigdl), on local and on
local-cluster; and what they rely on in every mode: Orca attaching to a SparkContext that runs
already, and spark-submit starting Ray on the application's executors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import bigdl_snippets
import psutil
import pyspark
import pytest

from orca_core import OrcaError, init_orca_context, plan_orca_context, stop_orca_context
from orca_core.compat import bigdl
from orca_core.errors import AlreadyRunning, ConfigError

HERE = os.path.dirname(os.path.abspath(__file__))
SUBMIT = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")


@pytest.fixture
def user_spark():
    """A SparkSession the program made itself, as a pyspark shell or notebook has; stopped at the end."""
    from pyspark.sql import SparkSession

    from orca_core import java
    from orca_core.engines.spark import stop_gateway

    saved = dict(os.environ)
    os.environ.update(java.for_spark())
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master("local[2]").appName("users own")
             .config("spark.driver.host", "127.0.0.1").config("spark.ui.enabled", "false").getOrCreate())
    try:
        yield spark
    finally:
        stop_orca_context()
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        spark.stop()
        SparkContext._gateway = SparkContext._jvm = None
        if gateway is not None:
            stop_gateway(gateway)
        os.environ.clear()
        os.environ.update(saved)


# BigDL's snippets, on local: each starts and stops its own context, as written.

@pytest.mark.parametrize("name", sorted(set(bigdl_snippets.SNIPPETS) - bigdl_snippets.NEEDS_SC))
def test_snippet_on_local(name):
    try:
        bigdl_snippets.run(name, {"attached": False})
    finally:
        bigdl.stop_orca_context()


def test_snippet_with_its_own_spark_context_on_local(user_spark):
    bigdl_snippets.run("ray-context-on-sc", {"attached": False}, sc=user_spark.sparkContext)


# ... and on local-cluster: a program spark-submit runs on local-cluster[2,1,4608] first starts Ray on
# the executors with Orca's cluster_mode="spark-submit", then makes its SparkContext, as a shell or
# notebook has, starts Ray lazily on it with BigDL's "bigdl-submit", and runs every snippet on it.
# Two SparkContexts in all: each brings up the executor JVMs again, the slowest part of the program.

CLUSTER_PROGRAM = """
import json, sys, time, traceback
sys.path.insert(0, {here!r})
import bigdl_snippets


def report(name, check):
    began = time.monotonic()
    try:
        check()
        outcome = "ok"
    except BaseException:
        outcome = traceback.format_exc()
    print("RESULT", json.dumps([name, outcome, round(time.monotonic() - began, 1)]), flush=True)


def core_spark_submit_with_ray():
    import ray
    from orca_core import OrcaContext, init_orca_context, stop_orca_context
    sc = init_orca_context(cluster_mode="spark-submit", init_ray_on_spark=True)
    assert sc.master == "local-cluster[2,1,4608]"
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) == 3 and ray.cluster_resources()["CPU"] == 2, alive  # a 0-CPU head, a node per executor
    head = ray.get_runtime_context().get_node_id()
    where = set(ray.get([ray.remote(lambda: ray.get_runtime_context().get_node_id()).remote() for _ in range(6)]))
    assert head not in where and where <= {{n["NodeID"] for n in alive}}
    assert OrcaContext.get_ray_context().num_nodes == 3
    stop_orca_context()
    assert sc._jsc is None and not ray.is_initialized()  # Orca made this SparkContext, so Orca stopped it


def bigdl_submit_lazy_ray(sc):
    import ray
    from orca_core.compat.bigdl import OrcaContext, init_orca_context, stop_orca_context
    assert init_orca_context(cluster_mode="bigdl-submit") is sc and not ray.is_initialized()
    ray_ctx = OrcaContext.get_ray_context()
    assert (ray_ctx.num_ray_nodes, ray_ctx.ray_node_cpu_cores) == (2, 1)
    head = ray.get_runtime_context().get_node_id()
    assert ray.get(ray.remote(lambda: ray.get_runtime_context().get_node_id()).remote()) != head  # on an executor
    stop_orca_context()
    assert sc._jsc is not None and not ray.is_initialized()  # the program's SparkContext runs on


report("spark-submit+ray", core_spark_submit_with_ray)
from pyspark import SparkContext
sc = SparkContext.getOrCreate()
report("bigdl-submit", lambda: bigdl_submit_lazy_ray(sc))
for name in sorted(bigdl_snippets.SNIPPETS):
    report(name, lambda: bigdl_snippets.run(name, {{"attached": True}}, sc=sc))
    assert sc._jsc is not None, name  # every snippet left the program's own SparkContext running
sc.stop()
"""
PROGRAM_TIMEOUT = 540  # below pytest-timeout's 600 s: a program that hangs fails with its stderr


def _results(stdout: str) -> dict[str, list]:
    """{step: [outcome ("ok" or its traceback), seconds]} of what the program reported."""
    reported = (json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines() if line.startswith("RESULT "))
    return {name: [outcome, seconds] for name, outcome, seconds in reported}


@pytest.fixture(scope="module")
def on_local_cluster(tmp_path_factory):
    program = tmp_path_factory.mktemp("bigdl") / "program.py"
    program.write_text(CLUSTER_PROGRAM.format(here=HERE))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    from orca_core import java

    env.update(java.for_spark())
    argv = [SUBMIT, "--master", "local-cluster[2,1,4608]", "--conf", "spark.driver.host=127.0.0.1",
            "--conf", "spark.ui.enabled=false", str(program)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=PROGRAM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the program, its Spark and its Ray: the driver's death ends them
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
        done = {name: f"{'ok' if outcome == 'ok' else 'failed'} in {seconds} s"
                for name, (outcome, seconds) in _results(stdout).items()}
        pytest.fail(f"the program did not end within {PROGRAM_TIMEOUT} s; it reported {done}; "
                    f"the end of its stderr:\n{stderr[-6000:]}")
    results = {name: outcome for name, (outcome, _) in _results(stdout).items()}
    assert results, f"the program reported nothing (status {proc.returncode}):\n{stderr[-4000:]}"
    return results, subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("name", sorted(bigdl_snippets.SNIPPETS))
def test_snippet_on_local_cluster(on_local_cluster, name):
    results, out = on_local_cluster
    assert results.get(name) == "ok", results.get(name) or out.stderr[-3000:]


def test_spark_submit_starts_ray_nodes_on_the_executors(on_local_cluster):
    results, out = on_local_cluster
    assert results.get("spark-submit+ray") == "ok", results.get("spark-submit+ray") or out.stderr[-3000:]
    # an application spark-submit started without spark.authenticate carries the Ray token in the nodes' task
    # (spark-submit merges its Python driver's stderr into its stdout)
    assert "Orca: this Spark application does not authenticate (spark.authenticate is off)" in out.stdout


def test_bigdl_submit_starts_ray_lazily_on_the_executors(on_local_cluster):
    results, out = on_local_cluster
    assert results.get("bigdl-submit") == "ok", results.get("bigdl-submit") or out.stderr[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]


# Attaching to a running SparkContext, in every mode's API.

def test_orca_attaches_to_a_running_spark_and_leaves_it_running(user_spark):
    import ray

    from orca_core import OrcaContext

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(AlreadyRunning, match='cluster_mode="spark-submit"'):
        init_orca_context(cluster_mode="local", cores=1)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before  # refused before starting anything
    sc = init_orca_context(cluster_mode="spark-submit", init_ray_on_spark=True, include_webui=False)
    assert sc is user_spark.sparkContext and OrcaContext.get_spark_session() is user_spark
    assert ray.cluster_resources()["CPU"] == 2  # a local head of the application's local[2] cores
    assert sc.parallelize(range(5)).map(lambda x: x * 2).sum() == 20
    stop_orca_context()
    assert not ray.is_initialized()
    assert user_spark.range(3).count() == 3 and sc._jsc is not None  # the user's Spark runs on


# conf values as Spark writes them.

def test_conf_numbers_and_bools_are_written_as_spark_does():
    plan = plan_orca_context(cores=1, conf={"spark.sql.shuffle.partitions": 3, "spark.memory.fraction": 0.5,
                                            "spark.ui.enabled": False, "spark.eventLog.enabled": True})
    conf = plan.spark_conf
    assert (conf["spark.sql.shuffle.partitions"], conf["spark.memory.fraction"]) == ("3", "0.5")
    assert (conf["spark.ui.enabled"], conf["spark.eventLog.enabled"]) == ("false", "true")
    sc = init_orca_context(cores=1, memory="1g", conf={"spark.sql.shuffle.partitions": 3, "spark.ui.enabled": False})
    try:
        assert sc.getConf().get("spark.sql.shuffle.partitions") == "3" and sc.uiWebUrl is None
    finally:
        stop_orca_context()


@pytest.mark.parametrize("value", [[2], {"a": 1}, None, b"2"])
def test_other_conf_values_stay_an_error(value):
    with pytest.raises(OrcaError, match=r"spark.executor.memory.*strings, numbers or bools"):
        plan_orca_context(conf={"spark.executor.memory": value})


# The BigDL signature and its keywords, without starting anything.

def test_bigdl_positional_order_and_keywords_per_mode():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call = bigdl.translate("Standalone", "spark", 4, "3g", 1, True, master="spark://h:7077", num_executors=3,
                               driver_cores=2, driver_memory="1g", jars=["a.jar", "b.jar"], python_location="/py",
                               redis_port=6379, system_config={"object_spilling_threshold": 0.9})
    assert call.arguments["cluster_mode"] == "standalone" and call.arguments["init_ray_on_spark"] is True
    plan = plan_orca_context(**call.arguments)
    conf = plan.spark_conf
    assert (conf["spark.executor.instances"], conf["spark.executor.cores"], conf["spark.driver.cores"]) == ("3", "4", "2")
    assert (conf["spark.jars"], conf["spark.pyspark.python"], plan.master) == ("a.jar,b.jar", "/py", "spark://h:7077")
    assert json.loads(plan.ray.params["system-config"]) == {"object_spilling_threshold": 0.9}
    messages = [str(w.message) for w in seen if w.category is bigdl.BigDLCompatWarning]
    assert len(messages) == 1 and messages[0].startswith("redis_port has no effect")


def test_each_bigdl_keyword_without_effect_warns_once_and_says_why():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bigdl.translate(cluster_mode="local", cores=1, redis_password="pw", verbose=True, hadoop_conf="/etc/hadoop",
                        init_executor_gateway=False, enable_numa_binding=True,
                        extra_params={"temp-dir": "/tmp/x", "min-worker-port": "30000"})
    messages = sorted(str(w.message) for w in seen if w.category is bigdl.BigDLCompatWarning)
    named = ["enable_numa_binding", "extra_params['temp-dir']", "hadoop_conf", "init_executor_gateway",
             "redis_password", "verbose"]
    assert [m.split(" has no effect: ")[0] for m in messages] == named
    assert all(len(m.split(" has no effect: ")[1]) > 10 for m in messages)


@pytest.mark.parametrize("kwargs, closest", [
    ({"object_store_memroy": "1g"}, "object_store_memory"),
    ({"init_ray_on_sprak": True}, "init_ray_on_spark"),
    ({"redis_prot": 1}, "redis_port"),
    ({"num_ray_node": 2}, "num_ray_nodes"),
])
def test_a_misspelled_bigdl_keyword_is_an_error_with_the_closest_match(kwargs, closest):
    with pytest.raises(ConfigError, match=f'did you mean "{closest}"'):
        bigdl.init_orca_context(cluster_mode="local", **kwargs)
    assert bigdl.OrcaRayContext._active_ray_context is None or not bigdl.OrcaRayContext._active_ray_context.initialized


def test_runtime_ray_address_and_the_lazy_ray_options():
    assert bigdl.translate(runtime="ray", address="").arguments["cluster_mode"] == "local"
    assert bigdl.translate(runtime="ray", address="ray://h:10001", env={"A": "1"}).arguments == {
        "cluster_mode": "ray", "runtime": "ray", "address": "ray://h:10001", "env": {"A": "1"}}
    call = bigdl.translate(cores=1, object_store_memory="1g", num_ray_nodes=None)
    assert "object_store_memory" not in call.arguments and call.lazy_ray == {"object_store_memory": "1g"}
    with pytest.raises(ConfigError, match="object_store_memory"):
        bigdl.translate(cores=1, object_store_memory="lots")  # checked at init, though Ray starts later


def test_runtime_ray_takes_the_keywords_of_ray_init():
    import inspect

    import ray

    assert set(bigdl.RAY_INIT_KWARGS) == set(inspect.signature(ray.init).parameters) - {"kwargs"}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call = bigdl.translate(runtime="ray", num_cpus=3, object_store_memory="1g", include_dashboard=False,
                               resources={"disk": 2}, labels={"zone": "z1"}, _system_config={"a": 1},
                               _node_name="n1", namespace="bigdl", runtime_env={"env_vars": {"A": "1"}},
                               log_to_driver=False, logging_level="debug", num_gpus=0, local_mode=False,
                               dashboard_host="127.0.0.1", configure_logging=None)
    assert not [w for w in seen if w.category is bigdl.BigDLCompatWarning]  # each mapped, or asking for nothing
    ray_plan = plan_orca_context(**call.arguments).ray
    assert (ray_plan.kind, ray_plan.cpus_per_node, ray_plan.object_store_memory, ray_plan.include_dashboard) == (
        "local", 3, 1 << 30, False)
    assert ray_plan.params == {"resources": '{"disk": 2}', "labels": "zone=z1", "system-config": '{"a": 1}',
                               "node-name": "n1"}
    assert call.driver == {"namespace": "bigdl", "runtime_env": {"env_vars": {"A": "1"}}, "log_to_driver": False,
                           "logging_level": "debug", "configure_logging": True}


def test_ray_init_keywords_without_effect_warn_once_and_say_why():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call = bigdl.translate(runtime="ray", cores=1, memory="4g", num_nodes=2, num_gpus=1, local_mode=True,
                               dashboard_port=8265, dashboard_host="0.0.0.0", _temp_dir="/tmp/r", _redis_password="pw",
                               ignore_reinit_error=True, enable_resource_isolation=True)
    messages = sorted(str(w.message) for w in seen if w.category is bigdl.BigDLCompatWarning)
    assert [m.split(" has no effect: ")[0] for m in messages] == [
        "_redis_password", "_temp_dir", "dashboard_host", "dashboard_port", "enable_resource_isolation",
        "ignore_reinit_error", "local_mode", "memory", "num_gpus", "num_nodes"]
    assert all(len(m.split(" has no effect: ")[1]) > 10 for m in messages)
    assert (call.arguments["memory"], call.arguments["num_nodes"]) == ("2g", 1)


def test_runtime_ray_with_an_address_warns_for_what_sizes_a_ray_it_does_not_start():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call = bigdl.translate(runtime="ray", address="ray://h:10001", cores=4, memory="8g", num_nodes=2, num_cpus=2,
                               object_store_memory="1g", resources={"disk": 1}, num_gpus=1, namespace="bigdl")
    messages = sorted(str(w.message) for w in seen if w.category is bigdl.BigDLCompatWarning)
    assert [m.split(" has no effect: ")[0] for m in messages] == [
        "cores", "memory", "num_cpus", "num_gpus", "num_nodes", "object_store_memory", "resources"]
    assert all("connects to the Ray cluster running there" in m for m in messages)
    assert call.arguments == {"cluster_mode": "ray", "runtime": "ray", "address": "ray://h:10001"}
    assert call.driver == {"namespace": "bigdl"}  # how this process connects: honoured there too


@pytest.mark.parametrize("kwargs, error", [
    ({"runtime_envv": {}}, 'did you mean "runtime_env"'),
    ({"namespce": "x"}, 'did you mean "namespace"'),
    ({"redis_port": 1}, "ray.init's"),  # BigDL passed it to ray.init, which refused it
    ({"resources": {"a": 1}, "extra_params": {"resources": "{}"}}, "give one of them"),
    ({"include_dashboard": False, "include_webui": True}, "give one of them"),
    ({"num_cpus": 2, "cores": 3}, "give one of them"),
    ({"resources": 2}, "must be a dict"),
    ({"namespace": ""}, "non-empty string"),
    ({"log_to_driver": "no"}, "True or False"),
])
def test_bad_ray_init_keywords_are_errors_before_anything_starts(kwargs, error):
    with pytest.raises(OrcaError, match=error):
        bigdl.translate(runtime="ray", **kwargs)


def test_get_ray_context_without_a_context_is_an_error():
    bigdl.stop_orca_context()
    with pytest.raises(OrcaError, match="init_orca_context"):
        bigdl.OrcaContext.get_ray_context()


def test_import_is_cheap():
    code = textwrap.dedent("""
        import sys
        from orca_core.compat.bigdl import (init_orca_context, stop_orca_context, OrcaContext, OrcaRayContext,
                                            RayOnSparkContext)
        print(sorted(m for m in ("pyspark", "ray", "psutil") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ray_on_spark_context_has_bigdls_signature():
    import inspect

    assert list(inspect.signature(bigdl.RayOnSparkContext).parameters) == [
        "sc", "redis_port", "redis_password", "object_store_memory", "verbose", "env", "extra_params",
        "include_webui", "num_ray_nodes", "ray_node_cpu_cores", "system_config"]
    assert list(inspect.signature(bigdl.init_orca_context).parameters)[:7] == [
        "cluster_mode", "runtime", "cores", "memory", "num_nodes", "init_ray_on_spark", "init_executor_gateway"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ctx = bigdl.RayOnSparkContext(None, redis_port=6379, num_ray_nodes=2, include_webui=False)
    try:
        assert [str(w.message).split(":")[0] for w in seen] == ["redis_port has no effect"]
        assert bigdl.OrcaRayContext.get(initialize=False) is ctx and not ctx.initialized
        with pytest.raises(OrcaError, match="init"):
            ctx.redis_address  # noqa: B018 (the property raises)
    finally:
        bigdl.stop_orca_context()


def test_orcas_own_options_of_the_mode_pass_through():
    assert bigdl.translate("yarn-client", cores=2, queue="q").arguments["queue"] == "q"
    call = bigdl.translate(cores=1, ray_node_memory="1g")  # a Ray option: held until Ray starts
    assert call.lazy_ray == {"ray_node_memory": "1g"} and "ray_node_memory" not in call.arguments
    assert bigdl.translate(cores=1, ray_node_memory="1g", init_ray_on_spark=True).arguments["ray_node_memory"] == "1g"


def test_runtime_ray_cores_default_as_bigdl():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert bigdl.translate(runtime="ray").arguments["cores"] == 2  # BigDL: ray.init(num_cpus=2)
    assert any("2 CPUs" in str(w.message) for w in seen if w.category is bigdl.BigDLCompatWarning)
    assert bigdl.translate(runtime="ray", address="").arguments["cores"] is None  # BigDL: ray.init(address="")
    assert bigdl.translate(runtime="ray", cores=3).arguments["cores"] == 3


def test_ray_context_keywords_are_checked_not_dropped():
    try:
        with pytest.raises(ConfigError, match='OrcaRayContext got an unknown keyword "address"'):
            bigdl.OrcaRayContext(sc=None, address="ray://h:10001")  # ray.init's, not Ray on Spark's
        with pytest.raises(ConfigError, match='did you mean "object_store_memory"'):
            bigdl.OrcaRayContext(object_store_memroy="1g")
    finally:
        bigdl.stop_orca_context()


def test_ray_context_of_runtime_ray_made_directly_starts_its_ray():
    import os

    import ray

    ray_ctx = bigdl.OrcaRayContext(runtime="ray", cores=1, include_dashboard=False, resources={"disk": 2},
                                   labels={"zone": "z1"}, _node_name="bigdl-node", namespace="bigdl",
                                   runtime_env={"env_vars": {"BIGDL_RUN": "yes"}})
    try:
        info = ray_ctx.init()
        assert ray_ctx.initialized and "object_store_address" in info
        assert ray.cluster_resources()["CPU"] == 1 and bigdl.OrcaContext.get_ray_context() is ray_ctx
        assert ray.cluster_resources()["disk"] == 2 and ray.get_runtime_context().namespace == "bigdl"
        (node,) = ray.nodes()
        assert node["Labels"]["zone"] == "z1" and node["NodeName"] == "bigdl-node"
        assert ray.get(ray.remote(lambda: os.environ.get("BIGDL_RUN")).remote()) == "yes"
        ray_ctx.stop()
        assert not ray.is_initialized()
    finally:
        bigdl.stop_orca_context()


def test_a_spark_context_the_program_made_is_bigdls_spark_context(user_spark):
    sc = user_spark.sparkContext
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call = bigdl.translate("yarn-client", cores=4, memory="8g", num_nodes=3)  # BigDL used the running one
    messages = [str(w.message) for w in seen if w.category is bigdl.BigDLCompatWarning]
    assert [m.split(" has no effect: ")[0] for m in messages] == [
        "cluster_mode='yarn-client'", "cores=4", "memory='8g'", "num_nodes=3"]
    assert call.arguments["cluster_mode"] == "spark-submit" and call.arguments["cores"] is None
    assert bigdl.OrcaContext.get_spark_context() is sc  # no init_orca_context: BigDL returned it too
    assert bigdl.OrcaContext.get_spark_session().sparkContext is sc
    assert bigdl.OrcaContext.get_sql_context().sql("SELECT 2 AS b").collect()[0].b == 2
    stop_orca_context()
    assert sc._jsc is not None
