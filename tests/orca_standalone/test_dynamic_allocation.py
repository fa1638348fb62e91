"""barrier_mode=False with dynamic allocation: executors that host Ray nodes are not released as idle."""

import threading

import psutil

from orca_core import OrcaContext, init_orca_context, stop_orca_context
from orca_core.ports import wait_for

IDLE_TIMEOUT_S = 3
DYNAMIC = {
    "spark.dynamicAllocation.enabled": "true",
    "spark.dynamicAllocation.shuffleTracking.enabled": "true",
    "spark.dynamicAllocation.executorIdleTimeout": f"{IDLE_TIMEOUT_S}s",
    "spark.dynamicAllocation.minExecutors": "0",
    "spark.dynamicAllocation.initialExecutors": "2",
    "spark.dynamicAllocation.maxExecutors": "2",
}


def _executors(sc):
    return len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1


def test_ray_nodes_outlive_the_idle_timeout_and_their_executors_are_then_released():
    OrcaContext.barrier_mode = False
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, init_ray_on_spark=True,
                           include_webui=False, conf=DYNAMIC)
    try:
        import ray

        from orca_core.context import current

        hosts = {node["executor"] for node in current().ray.nodes}
        assert hosts and all(psutil.pid_exists(pid) for pid in hosts)
        threading.Event().wait(IDLE_TIMEOUT_S * 4)  # well past the idle timeout
        assert all(psutil.pid_exists(pid) for pid in hosts), "an executor hosting a Ray node was released"
        assert sum(1 for n in ray.nodes() if n["Alive"]) == 3
        assert ray.get(ray.remote(num_cpus=1)(lambda: 1).remote()) == 1
        assert sc.parallelize(range(4), 2).sum() == 6  # Spark still schedules work
        OrcaContext.get_ray_context().stop()  # unpins: the idle executors now go
        wait_for(lambda: _executors(sc) == 0, 60, "dynamic allocation to release the idle executors")
    finally:
        stop_orca_context()
