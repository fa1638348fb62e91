"""Snippets from BigDL 2.4's docs and examples (the OrcaContext and RayContext parts), with only
`from bigdl.orca import ...` / `from bigdl.orca.ray import ...` changed to `orca_core.compat.bigdl`.
The comment above each names its source in https://github.com/intel-analytics/BigDL/blob/v2.4.0/
(`docs/...` is docs/readthedocs/source/doc/...).

Each runs with `HOST` in its namespace: {"attached": bool} (True when the program's SparkContext
runs already, on local-cluster[2,1,4608]: BigDL's snippets then attach to it and Ray runs as 2
nodes of 1 CPU on its executors) and `sc` when the snippet's source had a SparkContext of its own.
The lines after "# checks" assert the result.
"""

SNIPPETS = {
    # docs/UserGuide/python.md, docs/Orca/Overview/orca-context.md (3. Execution Engine)
    "orca-context-engines": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext

sc = init_orca_context()  # Initiation of bigdl on the underlying cluster.
from orca_core.compat.bigdl import OrcaContext

sc = OrcaContext.get_spark_context()
ray_ctx = OrcaContext.get_ray_context()
# checks
import ray
assert sc.parallelize(range(10), 2).sum() == 45
assert OrcaContext.get_sql_context().sql("SELECT 1 AS a").collect()[0].a == 1
assert ray_ctx.initialized and ray.is_initialized()  # started lazily, as BigDL does
assert ray.get(ray.remote(lambda: "ray ran").remote()) == "ray ran"
stop_orca_context()
assert not ray.is_initialized()
''',
    # docs/Orca/Howto/ray-quickstart.md, docs/Orca/Overview/ray.md (3. Run)
    "ray-counter-actors": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context

sc = init_orca_context(cluster_mode="local", cores=4, memory="4g", init_ray_on_spark=True)
import ray

@ray.remote
class Counter(object):
      def __init__(self):
          self.n = 0

      def increment(self):
          self.n += 1
          return self.n


counters = [Counter.remote() for i in range(5)]
result = ray.get([c.increment.remote() for c in counters])
print(result)
# checks
assert result == [1, 1, 1, 1, 1]
stop_orca_context()
''',
    # docs/Orca/Overview/ray.md (3. Run), python/orca/colab-notebook/quickstart/ray_parameter_server.ipynb
    "ray-address-info": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext

init_orca_context(cluster_mode="local", cores=4, memory='2g', num_nodes=1, init_ray_on_spark=True)
ray_ctx = OrcaContext.get_ray_context()
address_info = ray_ctx.address_info  # The dictionary information of the ray cluster, including node_ip_address, object_store_address, webui_url, etc.
redis_address = ray_ctx.redis_address  # The redis address of the ray cluster.
print(address_info['object_store_address'])
# checks
import ray
nodes, cpus = (2, 1) if HOST["attached"] else (1, 4)
assert {"node_ip_address", "object_store_address", "session_dir", "webui_url"} <= set(address_info)
assert redis_address == address_info["redis_address"] and redis_address.rpartition(":")[2].isdigit()
assert ray.get_runtime_context().gcs_address.rpartition(":")[2] == redis_address.rpartition(":")[2]
assert (ray_ctx.num_ray_nodes, ray_ctx.ray_node_cpu_cores) == (nodes, cpus)
assert ray.cluster_resources()["CPU"] == nodes * cpus
stop_orca_context()
''',
    # docs/Orca/Overview/known_issues.md (Ray Issues: worker_ports)
    "ray-worker-port-range": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext

init_orca_context(extra_params={"min-worker-port": "30000", "max-worker-port": "30033"})
# checks
import psutil
import ray
assert not ray.is_initialized()  # Ray starts at the first get_ray_context()
OrcaContext.get_ray_context()
assert ray.get(ray.remote(lambda: 7).remote()) == 7
raylets = [p.cmdline() for p in psutil.process_iter(["name"]) if p.info["name"] == "raylet"]
assert raylets and any("--min_worker_port=30000" in c and "--max_worker_port=30033" in c for c in raylets)
stop_orca_context()
''',
    # docs/Orca/Overview/ray.md (4. Known Issue), docs/Orca/Overview/known_issues.md (Ray Issues: redis port)
    "redis-port": '''
import warnings
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext, BigDLCompatWarning

with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    init_orca_context(redis_port=50006)
# checks
about = [str(w.message) for w in seen if issubclass(w.category, BigDLCompatWarning) and "redis_port" in str(w.message)]
assert len(about) == 1 and "no effect" in about[0], about
assert OrcaContext.get_spark_context().parallelize([1, 2]).count() == 2
stop_orca_context()
''',
    # docs/Orca/Overview/ray.md (4. Known Issue)
    "ray-env": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context

cluster_mode = "local"
sc = init_orca_context(cluster_mode, init_ray_on_spark=True, env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
# checks
import os
import ray
assert ray.get(ray.remote(lambda: (os.environ.get("LANG"), os.environ.get("LC_ALL"))).remote()) == ("C.UTF-8", "C.UTF-8")
stop_orca_context()
''',
    # docs/Orca/Overview/ray.md (2. Initialize), docs/Chronos/Overview/quick-tour.rst (init_orca_context)
    "barrier-mode-off": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext

OrcaContext.barrier_mode = False
init_orca_context(cluster_mode="local", cores=4, memory="8g", init_ray_on_spark=True)
# checks
import ray
assert sum(ray.get([ray.remote(lambda: 1).remote() for _ in range(8)])) == 8
assert ray.cluster_resources()["CPU"] == (2 if HOST["attached"] else 4)
assert ray.get(ray.remote(lambda: __import__("orca_core").OrcaContext.barrier_mode).remote()) is False  # on the workers
if HOST["attached"]:  # Ray on the executors: its nodes started as a plain Spark stage, whose cached result pins them
    started = [rdd.rdd() for rdd in OrcaContext.get_spark_context()._jsc.getPersistentRDDs().values()]
    assert len(started) == 1 and not started[0].isBarrier(), started
stop_orca_context()
OrcaContext.barrier_mode = True
''',
    # apps/pytorch/face_generation.ipynb
    "conf-driver-memory": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context

sc = init_orca_context(cores = 4, conf = {"spark.driver.memory": "10g"})
# checks
if HOST["attached"]:
    assert sc.getConf().get("spark.driver.memory") != "10g"  # the running application keeps its own conf
else:
    assert sc.getConf().get("spark.driver.memory") == "10g" and sc.master == "local[4]"
assert sc.range(100).sum() == 4950
stop_orca_context()
''',
    # apps/ray/parameter_server/sharded_parameter_server.ipynb (its `sc` came from bigdl.dllib's init_spark_on_local)
    "ray-context-on-sc": '''
import ray
from orca_core.compat.bigdl import OrcaRayContext
ray_ctx = OrcaRayContext(sc=sc, object_store_memory="4g")
ray_ctx.init()
# checks
from orca_core.compat.bigdl import stop_orca_context
assert ray_ctx.initialized and ray.is_initialized()
stores = [n["Resources"].get("object_store_memory", 0) for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
assert stores and all(abs(s - 4 * 2**30) < 2**20 for s in stores), stores
stop_orca_context()
assert sc.parallelize(range(3)).count() == 3  # the SparkContext the program made keeps running
''',
    # docs/Orca/Overview/orca-context.md (4. Extra Configurations), python/orca/colab-notebook/quickstart/pytorch_lenet_mnist_ray.ipynb
    "orca-context-settings": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext

OrcaContext.log_output = True
OrcaContext.serialize_data_creator = True
OrcaContext.pandas_read_backend = "pandas"
OrcaContext.train_data_store = "DISK_2"
init_orca_context(cores=1, memory="2g") # run in local mode
# checks
import os, shutil, tempfile, uuid
from orca_core.data import read_csv, run_data_creator
from orca_core.data.creators import creator_lock

def locked(key):  # whether run_data_creator runs a creator under the node's lock of `key`
    return run_data_creator(lambda config, batch_size: creator_lock(key).is_locked, None, 1, key=key)

folder = tempfile.mkdtemp()
for name in ("a", "b"):
    with open(os.path.join(folder, name + ".csv"), "w") as f:
        f.write("x,y\\n1,2\\n")
shards = read_csv(folder)
assert shards.num_partitions() == 2 and len(shards.to_pandas()) == 2  # the pandas backend: a shard per file
shutil.rmtree(folder)
assert locked(uuid.uuid4().hex)  # serialize_data_creator
if not HOST["attached"]:  # Orca's own Spark carries the settings to its workers
    key = uuid.uuid4().hex
    seen = OrcaContext.get_spark_context().parallelize([0], 1).map(
        lambda _: (__import__("orca_core").OrcaContext.settings(), locked(key))).collect()[0]
    assert seen[0]["train_data_store"] == "DISK_2" and seen[1], seen
stop_orca_context()
OrcaContext.reset()
''',
    # python/orca/src/bigdl/orca/ray/raycontext.py (OrcaRayContext.get, stop), docs/Orca/Howto/pytorch-quickstart-ray.md
    "ray-context-get-stop": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaRayContext

sc = init_orca_context(cores=4, memory="10g")
ray_ctx = OrcaRayContext.get()
# checks
import ray
assert ray_ctx.initialized and OrcaRayContext.get(initialize=False) is ray_ctx
ray_ctx.stop()
assert not ray_ctx.initialized and not ray.is_initialized()
assert sc.parallelize(range(4)).count() == 4  # Ray stopped, Spark runs on
stop_orca_context()
''',
    # docs/Orca/Overview/known_issues.md (OrcaContext Issues: use ray as the first-class, steps 2 and 3)
    "runtime-ray": '''
from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext

init_orca_context(runtime="ray", init_ray_on_spark=False)
ray_ctx = OrcaContext.get_ray_context()
ray_ctx.is_local=True
# checks
import ray
assert ray.get(ray.remote(lambda: 41 + 1).remote()) == 42
assert ray.cluster_resources()["CPU"] == 2  # BigDL's ray.init(num_cpus=cores), 2 when cores is not given
assert (ray_ctx.num_ray_nodes, ray_ctx.ray_node_cpu_cores) == (1, 2)
stop_orca_context()
assert not ray.is_initialized()
''',
}
# Snippets whose source had its own SparkContext: the test gives them one.
NEEDS_SC = {"ray-context-on-sc"}


def run(name: str, host: dict, sc=None) -> None:
    namespace = {"HOST": host}
    if name in NEEDS_SC:
        namespace["sc"] = sc
    exec(compile(SNIPPETS[name], f"<bigdl snippet {name}>", "exec"), namespace)
