"""GPUs and memory of Ray-on-Spark nodes, on a local-cluster whose workers find fake GPUs."""

import json
import os
import sys

import pytest

from orca_core import OrcaError, init_orca_context, plan_orca_context, stop_orca_context

MASTER = "local-cluster[2,1,1024]"
# Each worker that runs it gets two addresses of its own: the first 0 and 1, the second 2 and 3.
DISCOVERY = """#!{python}
import json, os
for i in range(16):
    try:
        os.close(os.open(os.path.join({folder!r}, f"worker{{i}}"), os.O_CREAT | os.O_EXCL))
        break
    except FileExistsError:
        pass
print(json.dumps({{"name": "gpu", "addresses": [str(2 * i), str(2 * i + 1)]}}))
"""


def _discovery_script(folder) -> str:
    path = os.path.join(folder, "gpus.py")
    with open(path, "w") as f:
        f.write(DISCOVERY.format(python=sys.executable, folder=str(folder)))
    os.chmod(path, 0o700)
    return path


def test_more_gpus_than_an_executor_gets_is_an_error_before_anything_starts(tmp_path):
    # runs before the module's context starts (init_orca_context would refuse a second one)
    from orca_core.context import current

    script = _discovery_script(tmp_path)
    conf = {"spark.master": MASTER, "spark.executor.resource.gpu.amount": "1",
            "spark.worker.resource.gpu.discoveryScript": script}
    with pytest.raises(OrcaError, match=r"ray_node_gpus=2, but each executor gets 1 GPU"):
        init_orca_context(cluster_mode="local", init_ray_on_spark=True, ray_node_gpus=2, conf=conf)
    assert current() is None
    assert not os.path.exists(tmp_path / "worker0")  # no Spark worker looked for GPUs
    with pytest.raises(OrcaError, match=r"each worker offers 1 \(spark.worker.resource.gpu.amount\)"):
        plan_orca_context(cluster_mode="local", init_ray_on_spark=True, ray_node_gpus=2,
                          conf={**conf, "spark.executor.resource.gpu.amount": "2",
                                "spark.worker.resource.gpu.amount": "1"})


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory):
    script = _discovery_script(tmp_path_factory.mktemp("gpus"))
    sc = init_orca_context(cluster_mode="local", init_ray_on_spark=True, include_webui=False, ray_node_gpus=1,
                           ray_node_memory="300m", object_store_memory="200m",
                           conf={"spark.master": MASTER, "spark.executor.resource.gpu.amount": "2",
                                 "spark.worker.resource.gpu.discoveryScript": script})
    yield sc
    stop_orca_context()


def _workers():
    import ray

    return [n for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"]]


def test_each_ray_node_has_the_gpus_and_memory_asked_for(gpu_cluster):
    workers = _workers()
    assert len(workers) == 2
    for node in workers:
        assert node["Resources"]["GPU"] == 1
        assert node["Resources"]["memory"] == 300 << 20
        assert node["Resources"]["object_store_memory"] == 200 << 20


def test_each_node_sees_only_the_gpu_spark_assigned_to_its_task(gpu_cluster):
    import ray

    @ray.remote(num_gpus=1)
    def visible():
        import time

        time.sleep(0.5)
        return ray.get_runtime_context().get_node_id(), os.environ["CUDA_VISIBLE_DEVICES"], ray.get_gpu_ids()

    seen = {}
    for node, devices, ids in ray.get([visible.remote() for _ in range(6)]):
        assert ids == [devices]
        seen.setdefault(node, set()).add(devices)
    assert len(seen) == 2
    per_node = [devices for devices in seen.values()]
    assert all(len(d) == 1 for d in per_node)  # one GPU per node, always the same one
    first, second = sorted(next(iter(d)) for d in per_node)
    # one address of the first worker's pair (0, 1) and one of the second's (2, 3)
    assert first in {"0", "1"} and second in {"2", "3"}


def test_spark_tasks_need_no_gpu_beside_the_ray_nodes(gpu_cluster):
    assert gpu_cluster.parallelize(range(4), 4).sum() == 6


def test_gpus_without_a_way_to_find_them_is_an_error():
    with pytest.raises(OrcaError, match="spark.worker.resource.gpu.discoveryScript"):
        plan_orca_context(cluster_mode="local", init_ray_on_spark=True, ray_node_gpus=1, conf={"spark.master": MASTER})


def test_gpu_conf_defaults_to_the_node_and_the_users_conf_wins(tmp_path):
    script = _discovery_script(tmp_path)
    plan = plan_orca_context(cluster_mode="local", init_ray_on_spark=True, ray_node_gpus=2,
                             conf={"spark.master": MASTER, "spark.worker.resource.gpu.discoveryScript": script})
    assert plan.spark_conf["spark.executor.resource.gpu.amount"] == "2"
    assert plan.spark_conf["spark.worker.resource.gpu.amount"] == "2"
    assert "spark.task.resource.gpu.amount" not in plan.spark_conf  # only the Ray nodes' tasks take GPUs
    assert plan.ray.gpus_per_node == 2
    plan = plan_orca_context(cluster_mode="local", init_ray_on_spark=True, ray_node_gpus=1,
                             conf={"spark.master": MASTER, "spark.worker.resource.gpu.discoveryScript": script,
                                   "spark.executor.resource.gpu.amount": "4", "spark.worker.resource.gpu.amount": "8"})
    assert (plan.spark_conf["spark.executor.resource.gpu.amount"], plan.spark_conf["spark.worker.resource.gpu.amount"]) \
        == ("4", "8")
    assert json.loads(plan.to_json())["ray"]["gpus_per_node"] == 1


def test_heap_and_object_store_beyond_the_executor_memory_is_an_error():
    with pytest.raises(OrcaError, match=r"800 MiB of heap .* and 400 MiB of object store .* 1024 MiB"):
        plan_orca_context(cluster_mode="local", init_ray_on_spark=True, ray_node_memory="800m",
                          object_store_memory="400m", conf={"spark.master": MASTER})
    with pytest.raises(OrcaError, match=r"3072 MiB of heap .*executor memory \(`memory`\) is 2048 MiB"):
        plan_orca_context(cluster_mode="standalone", cores=1, memory="2g", num_nodes=2, init_ray_on_spark=True,
                          ray_node_memory="3g")


def test_extra_params_may_not_set_gpus_or_memory():
    for flag, option in (("num-gpus", "ray_node_gpus"), ("memory", "ray_node_memory")):
        with pytest.raises(OrcaError, match=f"--{flag}.*use the option {option}"):
            plan_orca_context(cluster_mode="local", init_ray_on_spark=True, extra_params={flag: 1},
                              conf={"spark.master": MASTER})
