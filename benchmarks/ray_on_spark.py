"""Ray on Spark: Orca versus ray.util.spark.setup_ray_cluster, same Spark application shape.

Shape: `local-cluster[2,1,1024]` (two executor JVMs of one core). Measured: from "Spark is up"
to "Ray with 2 worker nodes accepts a task".

- ray.util.spark: one process starts Spark, then the clock runs over setup_ray_cluster(
  max_worker_nodes=2, num_cpus_worker_node=1, num_gpus_worker_node=0) + ray.init() + one task.
- Orca starts the Ray head while Spark starts, so "after Spark is up" is measured as the time of
  init_orca_context(init_ray_on_spark=True) + one task, minus the median time of the same
  init without Ray + the job that brings both executors up (fresh processes, alternating runs).

Also reports the total, from the first line of the program to 4 Ray tasks done on the 2 worker
nodes (Orca: init_orca_context; ray.util.spark: SparkSession, setup_ray_cluster, ray.init), goal
<= 0.35, and compares stop_orca_context() with shutdown_ray_cluster() + spark.stop().
Goal of "after Spark is up": ratio <= 0.25.
"""

from __future__ import annotations

import argparse
import os

from _common import median, report, run_json

MASTER = "local-cluster[2,1,1024]"
# a Ray task that takes a moment (so 4 of them spread over both nodes) and names its node
NODE_TASK = """
def NODE():
    import time, ray
    time.sleep(0.5)
    return ray.get_runtime_context().get_node_id()
"""

ORCA = NODE_TASK.replace("{", "{{").replace("}", "}}") + """
import time, json
t0 = time.perf_counter()
from orca_core import init_orca_context, stop_orca_context

sc = init_orca_context(cluster_mode="local", init_ray_on_spark={ray}, conf={{"spark.master": "{master}"}})
if not {ray}:
    sc.parallelize(range(2), 2).count()  # Spark is up: both executors registered and ran a task
else:
    import ray
    assert ray.get(ray.remote(num_cpus=1)(lambda: 1).remote()) == 1
t1 = time.perf_counter()
if {ray}:
    node = ray.remote(num_cpus=1)(NODE)
    assert len(set(ray.get([node.remote() for _ in range(4)]))) == 2
t2 = time.perf_counter()
stop_orca_context()
print(json.dumps({{"up": t1 - t0, "total": t2 - t0, "stop": time.perf_counter() - t2}}))
"""

RAY_UTIL_SPARK = NODE_TASK.replace("{", "{{").replace("}", "}}") + """
import time, json, sys
start = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("{master}").config("spark.task.cpus", "1").getOrCreate()
spark.sparkContext.parallelize(range(2), 2).count()
t0 = time.perf_counter()
import ray
from ray.util.spark import setup_ray_cluster, shutdown_ray_cluster
setup_ray_cluster(max_worker_nodes=2, num_cpus_worker_node=1, num_gpus_worker_node=0)
ray.init()
assert ray.get(ray.remote(num_cpus=1)(lambda: 1).remote()) == 1
t1 = time.perf_counter()
node = ray.remote(num_cpus=1)(NODE)
assert len(set(ray.get([node.remote() for _ in range(4)]))) == 2
t2 = time.perf_counter()
ray.shutdown()
shutdown_ray_cluster()
spark.stop()
print(json.dumps({{"ray": t1 - t0, "total": t2 - start, "stop": time.perf_counter() - t2}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # setup_ray_cluster's nodes get no token otherwise
    env["PATH"] = os.path.dirname(os.sys.executable) + os.pathsep + env.get("PATH", "")
    with_ray, spark_only, baseline = [], [], []
    for code, run_env in ((ORCA.format(ray=True, master=MASTER), None), (RAY_UTIL_SPARK.format(master=MASTER), env)):
        run_json(code, env=run_env)  # warm-up, not measured: page cache, the driver's class-data archive
    for i in range(args.runs):
        with_ray.append(run_json(ORCA.format(ray=True, master=MASTER)))
        spark_only.append(run_json(ORCA.format(ray=False, master=MASTER)))
        baseline.append(run_json(RAY_UTIL_SPARK.format(master=MASTER), env=env))
        print(f"run {i + 1}: orca with ray {with_ray[-1]['up']:.1f}s, spark only {spark_only[-1]['up']:.1f}s, "
              f"ray.util.spark {baseline[-1]['ray']:.1f}s", flush=True)
    spark_up = median(r["up"] for r in spark_only)
    ours = [r["up"] - spark_up for r in with_ray]
    report("Ray with 2 nodes after Spark is up", ours, [r["ray"] for r in baseline], "<= 0.25")
    report("total, program start to 4 Ray tasks done on 2 nodes", [r["total"] for r in with_ray],
           [r["total"] for r in baseline], "<= 0.35")
    report("stop", [r["stop"] for r in with_ray], [r["stop"] for r in baseline])


if __name__ == "__main__":
    main()
