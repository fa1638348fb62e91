"""barrier_mode=False with dynamic allocation: an executor that hosts a Ray node is not released as idle."""

import threading
from concurrent.futures import Future

import psutil

from orca_core import OrcaContext, init_orca_context, plan_orca_context, stop_orca_context
from orca_core.ports import wait_for

IDLE_TIMEOUT_S = 3
DYNAMIC = {
    "spark.dynamicAllocation.enabled": "true",
    "spark.dynamicAllocation.shuffleTracking.enabled": "true",
    "spark.dynamicAllocation.executorIdleTimeout": f"{IDLE_TIMEOUT_S}s",
    "spark.dynamicAllocation.minExecutors": "0",
    "spark.dynamicAllocation.initialExecutors": "1",
    "spark.dynamicAllocation.maxExecutors": "2",
}


def _executors(sc):
    return len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1


def _idle_after(sc, host: int, gate) -> tuple[Future, int]:
    """Run a job of two tasks, one on the `host` executor and one on another that dynamic allocation
    adds: the host's task ends first, the other's once `gate` exists. Returns the job and the other
    executor's pid, once the host's task has ended in Spark's eyes."""
    from orca_core.engines.ray_node import executor_pid

    started = gate.with_name("other-started")

    def task(_):
        pid = executor_pid()
        if pid == host:
            wait_for(started.exists, 120, "a task on a second executor")
        else:
            started.write_text(str(pid))
            wait_for(gate.exists, 120, "the test to open the gate")
        return [pid]

    job = Future()

    def run():
        sc.setJobGroup("order", "one task ends on the Ray node's executor, then one on another")
        try:
            job.set_result(sc.parallelize(range(2), 2).mapPartitions(task).collect())
        except Exception as error:
            job.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    tracker = sc.statusTracker()

    def host_task_ended():
        stages = [tracker.getStageInfo(s) for j in tracker.getJobIdsForGroup("order")
                  for s in tracker.getJobInfo(j).stageIds]
        return any(s is not None and s.numCompletedTasks >= 1 for s in stages)

    wait_for(host_task_ended, 180, "the task on the Ray node's executor to end")
    return job, int(started.read_text())


def test_a_ray_node_keeps_its_executor_past_the_idle_timeout_and_lets_it_go_when_stopped(tmp_path):
    OrcaContext.barrier_mode = False
    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, init_ray_on_spark=True,
                           num_ray_nodes=1, include_webui=False, conf=DYNAMIC)
    try:
        import ray

        from orca_core.context import current

        (host,) = {node["executor"] for node in current().ray.nodes}
        gate = tmp_path / "gate"
        job, other = _idle_after(sc, host, gate)
        gate.touch()
        assert sorted(job.result(timeout=60)) == sorted([host, other])
        # the other executor idled since after the host did: once Spark has released it, the host
        # has idled past the timeout too
        wait_for(lambda: not psutil.pid_exists(other) and _executors(sc) < 2, IDLE_TIMEOUT_S + 60,
                 "dynamic allocation to release the other executor")
        monitor = sc._jsc.sc().executorAllocationManager().get().executorMonitor()
        assert monitor.executorsPendingToRemove().isEmpty(), "the executor hosting a Ray node is being released"
        assert psutil.pid_exists(host) and _executors(sc) == 1
        assert sum(1 for n in ray.nodes() if n["Alive"]) == 2
        assert ray.get(ray.remote(num_cpus=1)(lambda: 1).remote()) == 1
        assert sc.parallelize(range(4), 2).sum() == 6  # Spark still schedules work
        OrcaContext.get_ray_context().stop()  # unpins: the idle executor now goes
        wait_for(lambda: _executors(sc) == 0, 60, "dynamic allocation to release the idle executor")
    finally:
        stop_orca_context()


def test_with_dynamic_allocation_the_application_may_take_the_cores_of_max_executors():
    def conf(**given):
        return plan_orca_context(cluster_mode="standalone", master="spark://10.0.0.1:7077", cores=4, num_nodes=1,
                                 conf={"spark.dynamicAllocation.enabled": "true", **given}).spark_conf

    assert conf(**{"spark.dynamicAllocation.maxExecutors": "3"})["spark.cores.max"] == "12"
    assert "spark.cores.max" not in conf()  # Spark's requests bound it
    assert conf(**{"spark.cores.max": "6"})["spark.cores.max"] == "6"  # the user's conf wins
    assert plan_orca_context(cluster_mode="standalone", master="spark://10.0.0.1:7077", cores=4,
                             num_nodes=2).spark_conf["spark.cores.max"] == "8"
