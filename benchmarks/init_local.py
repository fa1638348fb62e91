"""init_orca_context(local, Ray) + one Spark job + one Ray task, versus raw SparkSession then ray.init.

Each run is a fresh interpreter; one warm-up run of each, then runs alternate; medians of 5
(goal: ratio <= 0.70).
Also compares stop_orca_context() with spark.stop() + ray.shutdown().
"""

from __future__ import annotations

import argparse

from _common import report, run_json

ORCA = """
import time, json
t0 = time.perf_counter()
from orca_core import init_orca_context, stop_orca_context
sc = init_orca_context(cluster_mode="local", cores=2, init_ray_on_spark=True)
assert sc.parallelize(range(100), 2).sum() == 4950
import ray
assert ray.get(ray.remote(lambda: 1).remote()) == 1
t1 = time.perf_counter()
stop_orca_context()
print(json.dumps({"start": t1 - t0, "stop": time.perf_counter() - t1}))
"""

RAW = """
import time, json
t0 = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").getOrCreate()
assert spark.sparkContext.parallelize(range(100), 2).sum() == 4950
import ray
ray.init(num_cpus=2)
assert ray.get(ray.remote(lambda: 1).remote()) == 1
t1 = time.perf_counter()
ray.shutdown()
spark.stop()
print(json.dumps({"start": t1 - t0, "stop": time.perf_counter() - t1}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours, raw = [], []
    run_json(ORCA), run_json(RAW)  # warm-up, not measured: page cache, the driver's class-data archive
    for i in range(args.runs):
        ours.append(run_json(ORCA))
        raw.append(run_json(RAW))
        print(f"run {i + 1}: orca {ours[-1]['start']:.2f}s, raw {raw[-1]['start']:.2f}s", flush=True)
    report("start + job + task", [r["start"] for r in ours], [r["start"] for r in raw], "<= 0.70")
    report("stop", [r["stop"] for r in ours], [r["stop"] for r in raw])


if __name__ == "__main__":
    main()
