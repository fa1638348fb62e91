"""ship_python_env on a real two-worker standalone cluster (and a local-cluster): executors and Ray nodes
run the shipped env, unpacked once per host into the nodes' environment cache and reused by later applications."""

import json
import os
import re
import sys

import psutil
import pytest

from orca_core import OrcaError, init_orca_context, plan_orca_context, stop_orca_context
from orca_core.ports import wait_for
from orca_core.shipping import nodecache


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    (root / "onlyhere.py").write_text("WHERE = 'shipped with extra_python_lib'\n")
    old = os.environ.get("ORCA_CACHE_DIR")
    os.environ["ORCA_CACHE_DIR"] = str(root / "cache")
    yield root
    if old is None:
        os.environ.pop("ORCA_CACHE_DIR", None)
    else:
        os.environ["ORCA_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def shipped(cache_root):
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, ship_python_env=True,
                           init_ray_on_spark=True, include_webui=False,
                           extra_python_lib=str(cache_root / "onlyhere.py"))
    yield sc
    stop_orca_context()


def _where():
    """Where a task runs; made inside each test so that it is pickled by value, not by module name."""

    def where():
        import sys

        import onlyhere

        return sys.executable, sys.prefix, onlyhere.WHERE

    return where


def _node_envs(cache_root):
    return nodecache.entries(str(cache_root / "cache" / "node-envs"))


def test_spark_tasks_run_the_environment_unpacked_once_for_the_host(shipped, cache_root):
    where = _where()
    seen = shipped.parallelize(range(4), 4).map(lambda _: where()).collect()
    [env] = _node_envs(cache_root)
    assert env["in_use"]  # held by the executors' Python workers
    for executable, prefix, where in seen:
        assert prefix == env["path"] and executable.startswith(env["path"] + os.sep), (executable, prefix)
        assert where == "shipped with extra_python_lib"


def test_ray_on_spark_tasks_run_the_shipped_env_and_see_extra_libs(shipped, cache_root):
    import ray

    executable, prefix, where = ray.get(ray.remote(_where()).remote())
    [env] = _node_envs(cache_root)
    assert prefix == env["path"]
    assert where == "shipped with extra_python_lib"
    lock = env["path"] + ".lock"  # each node's supervisor holds the environment in use, as the executors do
    supervisors = [p for p in psutil.process_iter(["cmdline"])
                   if "--control-name" in (p.info["cmdline"] or ()) and p.info["cmdline"][0].startswith(env["path"])]
    assert len(supervisors) == 2 and all(lock in {f.path for f in p.open_files()} for p in supervisors)


def test_eviction_removes_idle_environments_and_never_one_in_use(shipped, cache_root):
    [env] = _node_envs(cache_root)
    root = os.path.dirname(env["path"])
    idle = os.path.join(root, "idle-env")
    os.makedirs(os.path.join(idle, "bin"))
    with open(os.path.join(idle, nodecache.MARKER), "w") as f:
        json.dump({"key": "idle-env", "bytes": 1}, f)
    assert nodecache.evict(root, keep="", limit=0) == ["idle-env"]  # a cap of 0: all that nothing runs goes
    assert [e["path"] for e in _node_envs(cache_root)] == [env["path"]]
    assert shipped.parallelize(range(2), 2).map(lambda _: __import__("sys").prefix).collect() == [env["path"]] * 2


def test_a_later_application_reuses_the_unpacked_environment(shipped, cache_root):
    [before] = _node_envs(cache_root)
    marker = os.path.join(before["path"], nodecache.MARKER)
    unpacked, inode = json.load(open(marker))["unpacked"], os.stat(before["path"]).st_ino
    stop_orca_context()
    assert not _node_envs(cache_root)[0]["in_use"]
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, ship_python_env=True)
    try:
        prefixes = set(sc.parallelize(range(2), 2).map(lambda _: __import__("sys").prefix).collect())
    finally:
        stop_orca_context()
    assert prefixes == {before["path"]}
    assert json.load(open(marker))["unpacked"] == unpacked and os.stat(before["path"]).st_ino == inode


def test_without_the_node_cache_spark_unpacks_per_executor(linked_env_archive):
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, penv_archive=linked_env_archive,
                           node_env_cache=False)
    try:
        wait_for(lambda: len(sc._jsc.sc().statusTracker().getExecutorInfos()) == 3, 120, "both executors to register")
        prefixes = set(sc.parallelize(range(4), 4).map(lambda _: __import__("sys").prefix).collect())
    finally:
        stop_orca_context()
    assert len(prefixes) == 2, prefixes  # one unpacked archive per executor, in its work dir
    assert all("/standalone/worker-" in p and p.endswith("/python_env") for p in prefixes), prefixes
    assert not any(p.startswith(sys.prefix + os.sep) for p in prefixes)


def test_a_local_cluster_runs_the_environment_from_the_host_cache(linked_env_archive, tmp_path):
    args = dict(cluster_mode="local", conf={"spark.master": "local-cluster[2,1,1024]"}, penv_archive=linked_env_archive,
                node_env_cache=str(tmp_path / "envs"))
    damaged = tmp_path / "envs" / plan_orca_context(**args).python_env.key  # an unpack cut short: no marker
    (damaged / "bin").mkdir(parents=True)
    (damaged / "bin" / "python").write_text("truncated")
    sc = init_orca_context(**args)
    try:
        wait_for(lambda: len(sc._jsc.sc().statusTracker().getExecutorInfos()) == 3, 120, "both executors to register")
        prefixes = set(sc.parallelize(range(4), 4).map(lambda _: __import__("sys").prefix).collect())
        [env] = nodecache.entries(str(tmp_path / "envs"))
        assert env["in_use"]
    finally:
        stop_orca_context()
    assert prefixes == {env["path"]} == {str(damaged)}  # both executors run the one environment of the host,
    assert (damaged / "bin" / "python").is_symlink()  # unpacked again where the damaged one was


def test_shipping_options_without_a_cluster_to_ship_to_are_errors(linked_env_archive):
    with pytest.raises(OrcaError, match="ship to a cluster's executors, and master local\\[2\\] runs"):
        plan_orca_context(cluster_mode="local", cores=2, penv_archive=linked_env_archive)
    with pytest.raises(OrcaError, match="node_env_cache=False configure a shipped Python environment, and none ships"):
        plan_orca_context(cluster_mode="standalone", master="spark://10.0.0.1:7077", node_env_cache=False)


def test_a_cluster_elsewhere_is_sent_the_launcher_and_where_the_driver_serves_the_archive(tmp_path, linked_env_archive):
    from orca_standalone.daemons import LocalStandaloneCluster

    cluster = LocalStandaloneCluster(str(tmp_path), workers=1, cores=1, memory_mb=1024)
    master = cluster.start()
    try:
        plan = plan_orca_context(cluster_mode="standalone", master=master, cores=1, memory="1g", num_nodes=1,
                                 penv_archive=linked_env_archive, node_env_cache=str(tmp_path / "envs"))
        launcher = plan.python_env.launcher
        assert launcher.startswith("./orca-python-") and plan.spark_conf["spark.pyspark.python"] == launcher
        assert plan.spark_conf["spark.files"].endswith(launcher[1:])  # the launcher only, not the archive
        assert "spark.archives" not in plan.spark_conf
        sc = init_orca_context(cluster_mode="standalone", master=master, cores=1, memory="1g", num_nodes=1,
                               penv_archive=linked_env_archive, node_env_cache=str(tmp_path / "envs"))
        try:
            [env] = nodecache.entries(str(tmp_path / "envs"))
            assert env["key"] == plan.python_env.key and env["in_use"]  # init started the executor's Python
            prefix = sc.parallelize([0], 1).map(lambda _: __import__("sys").prefix).first()
            assert sc.getConf().get("spark.executorEnv.ORCA_ENV_URL").startswith("http://127.0.0.1:")
        finally:
            stop_orca_context()
        assert prefix == str(tmp_path / "envs" / plan.python_env.key)
    finally:
        cluster.stop()


@pytest.mark.parametrize("ray", [False, True], ids=["spark", "ray-on-spark"])
def test_a_node_that_cannot_use_its_cache_fails_init_with_the_reason_and_leaves_nothing(tmp_path, linked_env_archive, ray):
    from orca_standalone.daemons import LocalStandaloneCluster

    from orca_core import state
    from orca_core.errors import NodeEnvironmentError

    (tmp_path / "file").write_text("")
    cluster = LocalStandaloneCluster(str(tmp_path / "cluster"), workers=1, cores=1, memory_mb=1024)
    master = cluster.start()
    try:
        before = {p.pid for p in psutil.Process().children(recursive=True)}  # the cluster's daemons
        with pytest.raises(NodeEnvironmentError) as raised:
            init_orca_context(cluster_mode="standalone", master=master, cores=1, memory="1g", num_nodes=1,
                              penv_archive=linked_env_archive, node_env_cache=str(tmp_path / "file" / "envs"),
                              init_ray_on_spark=ray)
        assert re.fullmatch(r"the shipped Python environment cannot start on executor 0 on 127\.0\.0\.1: orca: "
                            rf"cannot use the environment cache {tmp_path}/file/envs on \S+: Not a directory\. "
                            r"Point the option node_env_cache at a writable folder of your own", str(raised.value))
        assert state.running is None
        left = lambda: {p.pid for p in psutil.Process().children(recursive=True)} - before  # noqa: E731
        wait_for(lambda: not left(), 30, "the application's executor to end")  # the worker kills it
    finally:
        cluster.stop()


def test_plan_names_the_archive_without_packing(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "empty-cache"))
    plan = plan_orca_context(cluster_mode="standalone", master="spark://10.0.0.1:7077", ship_python_env=True,
                             node_env_cache=False)
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


def test_a_node_cache_that_cannot_be_used_is_an_error_before_any_daemon_starts(tmp_path, cache_root):

    (tmp_path / "file").write_text("")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(OrcaError, match="cannot use the environment cache .*node_env_cache"):
        init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=1, ship_python_env=True,
                          node_env_cache=str(tmp_path / "file" / "envs"))
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


@pytest.mark.parametrize(("options", "barrier", "checked"), [
    ({}, True, True),
    ({"node_env_cache": False}, True, False),  # Spark unpacks per executor: no launcher to check
    ({"conf": {"spark.dynamicAllocation.enabled": "true"}}, True, False),
    ({"init_ray_on_spark": True}, True, False),  # a Ray node on every slot starts the environment
    ({"init_ray_on_spark": True}, False, True),  # plain tasks may share an executor
    ({"init_ray_on_spark": True, "num_ray_nodes": 1}, True, True),
    ({"init_ray_on_spark": True, "max_ray_nodes": 2}, True, True),
    ({"init_ray_on_spark": True, "cores": 2, "ray_node_cpu_cores": 2}, True, True),  # 2 slots per executor
])
def test_init_checks_the_executors_unless_ray_nodes_cover_every_slot(linked_env_archive, options, barrier, checked):
    from orca_core import OrcaContext
    from orca_core.shipping import probe

    options = {"cores": 1, "num_nodes": 2, **options}
    plan = plan_orca_context(cluster_mode="standalone", master="spark://10.0.0.1:7077", memory="1g",
                             penv_archive=linked_env_archive, **options)
    old, OrcaContext.barrier_mode = OrcaContext.barrier_mode, barrier
    try:
        assert probe.needed(plan) is checked
    finally:
        OrcaContext.barrier_mode = old
