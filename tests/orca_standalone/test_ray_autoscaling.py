"""Autoscaling Ray on Spark on a local-cluster of two one-core executors: 1 node at rest, 2 under load."""

import subprocess
import threading
import time
from concurrent.futures import Future

import pytest

from orca_core import OrcaError, init_orca_context, plan_orca_context, stop_orca_context
from orca_core.ports import wait_for
from orca_core.testing import assert_kill_9_leaves_nothing, leftovers, write_driver

MASTER = "local-cluster[2,1,1024]"
IDLE = 5


@pytest.fixture(scope="module")
def scaling():
    sc = init_orca_context(cluster_mode="local", init_ray_on_spark=True, include_webui=False, min_ray_nodes=1,
                           max_ray_nodes=2, ray_node_idle_timeout=IDLE, conf={"spark.master": MASTER})
    yield sc
    stop_orca_context()


def _workers():
    import ray

    return [n for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"]]


def _idle_ms(node_id: str) -> int:
    import ray
    from ray._raylet import GcsClient
    from ray.autoscaler.v2.sdk import get_cluster_resource_state

    from orca_core import OrcaContext

    state = get_cluster_resource_state(GcsClient(address=OrcaContext.get_ray_context().address))
    assert ray.is_initialized()
    return next(n.idle_duration_ms for n in state.node_states if n.node_id.hex() == node_id)


def test_it_starts_with_the_minimum(scaling):
    assert len(_workers()) == 1


def test_a_burst_grows_the_cluster_to_the_maximum_and_idling_shrinks_it_back(scaling):
    import ray

    @ray.remote(num_cpus=1)
    def work():
        time.sleep(3)
        return ray.get_runtime_context().get_node_id()

    refs = [work.remote() for _ in range(8)]
    counts = []
    while len(ray.wait(refs, num_returns=len(refs), timeout=0.2)[0]) < len(refs):
        counts.append(len(_workers()))
    assert max(counts) == 2 and counts[0] == 1  # grew from the minimum to the maximum, never beyond
    assert len(set(ray.get(refs))) == 2  # the burst ran on both nodes

    wait_for(lambda: len(_workers()) == 1, IDLE + 60, "the idle node to stop")
    (left,) = _workers()
    # the last node stays: it idles past the timeout and still runs
    wait_for(lambda: _idle_ms(left["NodeID"]) > (IDLE + 2) * 1000, IDLE + 30, "the last node to idle past the timeout")
    assert [n["NodeID"] for n in _workers()] == [left["NodeID"]]


def test_the_stopped_node_gave_its_spark_slot_back(scaling):
    done = Future()

    def job():
        try:
            done.set_result(scaling.parallelize(range(4), 1).sum())
        except Exception as error:
            done.set_exception(error)

    threading.Thread(target=job, daemon=True).start()
    assert done.result(timeout=120) == 6  # the one free core of the two runs it


def test_autoscaling_options_are_checked_up_front():
    def plan(**options):
        return plan_orca_context(cluster_mode="local", init_ray_on_spark=True, conf={"spark.master": MASTER},
                                 **options)

    assert (plan(max_ray_nodes=2).ray.num_nodes, plan(max_ray_nodes=2).ray.max_nodes) == (0, 2)
    assert plan(max_ray_nodes=2, min_ray_nodes=1, ray_node_idle_timeout=30).ray.idle_timeout == 30
    with pytest.raises(OrcaError, match="min_ray_nodes, ray_node_idle_timeout configure autoscaling.*max_ray_nodes"):
        plan(min_ray_nodes=1, ray_node_idle_timeout=3)
    with pytest.raises(OrcaError, match="num_ray_nodes fixes .* pass one of them"):
        plan(num_ray_nodes=1, max_ray_nodes=2)
    with pytest.raises(OrcaError, match=r"min_ray_nodes=3, max_ray_nodes=2: .*<= 2 \(the Ray nodes"):
        plan(min_ray_nodes=3, max_ray_nodes=2)
    with pytest.raises(OrcaError, match=r"max_ray_nodes=3: .*<= 2"):
        plan(max_ray_nodes=3)
    with pytest.raises(OrcaError, match="ray_node_idle_timeout=0"):
        plan(max_ray_nodes=2, ray_node_idle_timeout=0)
    dynamic = {"spark.master": MASTER, "spark.dynamicAllocation.enabled": "true"}
    assert plan_orca_context(cluster_mode="local", init_ray_on_spark=True, conf=dynamic, max_ray_nodes=8).ray.max_nodes == 8


DRIVER = f"""
    from orca_core import init_orca_context

    init_orca_context(cluster_mode="local", init_ray_on_spark=True, include_webui=False, min_ray_nodes=2,
                      max_ray_nodes=2, conf={{"spark.master": "{MASTER}"}})
"""


def test_autoscaled_nodes_leave_nothing_after_stop_or_kill_9(tmp_path, marked_env):
    driver = write_driver(tmp_path, DRIVER)
    marker, env = marked_env
    out = subprocess.run([*driver, "stop"], env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0 and "STOPPED" in out.stdout, out.stderr[-3000:]
    wait_for(lambda: not leftovers(marker), 15, "every process to exit")
    assert_kill_9_leaves_nothing(driver, marked_env, running=("raylet", "CoarseGrainedExecutorBackend"))
