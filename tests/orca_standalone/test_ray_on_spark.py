"""Ray on a real standalone cluster of two workers that Orca starts on this machine."""

import os
import subprocess
import sys

import psutil
import pytest

from orca_core import OrcaContext, OrcaError, init_orca_context, plan_orca_context, stop_orca_context
from orca_core.ports import wait_for


@pytest.fixture(scope="module")
def cluster():
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, init_ray_on_spark=True)
    yield sc
    stop_orca_context()


def _alive_nodes():
    import ray

    return [n for n in ray.nodes() if n["Alive"]]


def _executor_jvms(sc_or_app):
    app = sc_or_app if isinstance(sc_or_app, str) else sc_or_app.applicationId
    return [p for p in psutil.process_iter(["cmdline"])
            if "CoarseGrainedExecutorBackend" in " ".join(p.info["cmdline"] or []) and app in p.info["cmdline"]]


def test_two_executors_on_two_workers(cluster):
    assert cluster.master.startswith("spark://127.0.0.1:")
    assert len(_executor_jvms(cluster)) == 2
    ids = cluster.parallelize(range(8), 8).map(lambda _: __import__("pyspark").SparkEnv if False else
                                                __import__("os").getppid()).distinct().collect()
    assert len(ids) == 2  # tasks ran in both executors' Python daemons


def test_ray_reports_the_expected_nodes_and_cpus(cluster):
    ctx = OrcaContext.get_ray_context()
    assert ctx.num_nodes == 3  # the 0-CPU head on the driver and one node per executor
    assert ctx.resources["CPU"] == 2
    assert ctx.dashboard_url.startswith("http://127.0.0.1:")


def _node_raylets():
    """The raylets of the Ray nodes on the executors (not the head's)."""
    return [p for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [""])[0].endswith("/raylet") and "orca-rn-" in " ".join(p.info["cmdline"])]


def test_each_node_has_a_python_worker_ready_before_the_first_task(cluster):
    raylets = _node_raylets()
    assert len(raylets) == 2

    def worker(process):  # a Python worker names itself "ray::IDLE" once it has started
        command = " ".join(process.cmdline())
        return "ray::IDLE" in command or "default_worker.py" in command

    def ready():
        return all(any(worker(c) for c in r.children()) for r in raylets)

    wait_for(ready, 30, "a prestarted Python worker on each Ray node")
    assert all("RAY_enable_worker_prestart=1" in open(f"/proc/{r.pid}/environ").read().split("\0") for r in raylets)


def test_ray_tasks_land_on_more_than_one_node(cluster):
    import ray

    @ray.remote(num_cpus=1)
    def node():
        import time

        time.sleep(0.2)
        return ray.get_runtime_context().get_node_id()

    assert len(set(ray.get([node.remote() for _ in range(8)]))) == 2


def test_a_spark_job_using_every_core_runs_while_ray_is_up(cluster):
    assert cluster.parallelize(range(2), 2).map(lambda x: x + 1).collect() == [1, 2]
    assert len(_alive_nodes()) == 3


def test_a_client_without_the_token_is_refused(cluster):
    address = OrcaContext.get_ray_context().address
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="wrong")
    out = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='{address}'); print('connected')"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert "connected" not in out.stdout and out.returncode != 0


def test_killing_an_executor_removes_its_ray_node(cluster):
    victim = _executor_jvms(cluster)[0]
    supervisors = [p for p in psutil.process_iter(["cmdline"])
                   if "orca_core.supervisor" in " ".join(p.info["cmdline"] or [])
                   and f"--watch-pid {victim.pid}" in " ".join(p.info["cmdline"])]
    assert len(supervisors) == 1
    node_tree = [supervisors[0], *supervisors[0].children(recursive=True)]
    victim.kill()

    def running():
        alive = []
        for p in node_tree:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        return alive

    wait_for(lambda: not running(), 15, "the Ray node of the killed executor to exit")
    wait_for(lambda: len(_alive_nodes()) == 2, 90, "Ray to see the node gone")


def test_stop_then_nothing_of_ray_remains(cluster):
    import ray

    app = cluster.applicationId
    stop_orca_context()
    assert not ray.is_initialized()
    assert not _executor_jvms(app)


def test_too_many_ray_nodes_is_an_error_up_front():
    with pytest.raises(OrcaError, match="num_ray_nodes=3.*2 executor"):
        plan_orca_context(cluster_mode="standalone", cores=1, num_nodes=2, init_ray_on_spark=True, num_ray_nodes=3)
    with pytest.raises(OrcaError, match="ray_node_cpu_cores=4.*1 core"):
        plan_orca_context(cluster_mode="standalone", cores=1, num_nodes=2, init_ray_on_spark=True,
                          ray_node_cpu_cores=4)


def test_barrier_mode_with_too_few_slots_fails_fast(tmp_path):
    from orca_standalone.daemons import LocalStandaloneCluster

    small = LocalStandaloneCluster(str(tmp_path), workers=1, cores=1, memory_mb=1024)
    master = small.start()
    try:
        with pytest.raises(OrcaError, match=r"2 Ray node\(s\) at once but Spark has [01] free task slot"):
            init_orca_context(cluster_mode="standalone", master=master, cores=1, memory="1g", num_nodes=2,
                              init_ray_on_spark=True, include_webui=False,
                              conf={"spark.scheduler.maxRegisteredResourcesWaitingTime": "5s"})
        from orca_core.context import current

        assert current() is None
    finally:
        small.stop()


def test_local_cluster_master_runs_ray_on_spark():
    sc = init_orca_context(cluster_mode="local", init_ray_on_spark=True, include_webui=False,
                           env={"RAY_enable_worker_prestart": "0"}, conf={"spark.master": "local-cluster[2,1,1024]"})
    try:
        import ray

        assert OrcaContext.get_ray_context().num_nodes == 3
        raylets = _node_raylets()
        assert len(raylets) == 2  # the user's env wins over the prestart Orca turns on
        assert all("RAY_enable_worker_prestart=0" in open(f"/proc/{r.pid}/environ").read().split("\0") for r in raylets)
        assert ray.get(ray.remote(lambda: 7).remote()) == 7
        assert sc.parallelize(range(4), 2).sum() == 6
    finally:
        stop_orca_context()
