"""Autoscaling Ray on Spark with dynamic allocation, on a standalone cluster of two one-core workers:
a Ray node the autoscaler asks for brings its executor with it, and both go once the node has idled."""

import psutil

from orca_core import init_orca_context, stop_orca_context
from orca_core.ports import wait_for

NODE_IDLE_S = 5
EXECUTOR_IDLE_S = 3
DYNAMIC = {
    "spark.dynamicAllocation.enabled": "true",
    "spark.dynamicAllocation.shuffleTracking.enabled": "true",
    "spark.dynamicAllocation.executorIdleTimeout": f"{EXECUTOR_IDLE_S}s",
    "spark.dynamicAllocation.minExecutors": "0",
    "spark.dynamicAllocation.initialExecutors": "1",
    "spark.dynamicAllocation.maxExecutors": "2",
}


def _executors(sc) -> int:
    return len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1


def _workers() -> list[str]:
    import ray

    return [n["NodeID"] for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"]]


def test_a_node_ray_needs_brings_an_executor_and_both_go_when_it_idles(tmp_path):
    import ray

    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, init_ray_on_spark=True,
                           include_webui=False, min_ray_nodes=1, max_ray_nodes=2, ray_node_idle_timeout=NODE_IDLE_S,
                           conf=DYNAMIC)
    try:
        assert (len(_workers()), _executors(sc)) == (1, 1)

        gate = tmp_path / "open"

        @ray.remote(num_cpus=1)
        def held():  # holds its CPU until the gate opens (a task blocked in ray.get would give it back)
            from orca_core.engines.ray_node import executor_pid

            wait_for(gate.exists, 240, "the test to open the gate")
            return ray.get_runtime_context().get_node_id(), executor_pid()

        refs = [held.remote() for _ in range(2)]  # one CPU each: the second waits for a second node
        wait_for(lambda: len(_workers()) == 2, 240, "the autoscaler's second Ray node to join")
        assert _executors(sc) == 2
        gate.touch()
        ran = dict(ray.get(refs, timeout=60))
        assert len(ran) == 2 and len(set(ran.values())) == 2  # the burst ran on both nodes, on two executors

        wait_for(lambda: len(_workers()) == 1, NODE_IDLE_S + 60, "the idle Ray node to stop")
        (left,) = _workers()
        gone = next(pid for node, pid in ran.items() if node != left)
        wait_for(lambda: _executors(sc) == 1 and not psutil.pid_exists(gone), EXECUTOR_IDLE_S + 60,
                 "dynamic allocation to release the stopped node's executor")
        assert psutil.pid_exists(ran[left])  # the executor of the node that stays stays
        assert ray.get(held.remote(), timeout=60)[0] == left
    finally:
        stop_orca_context()
