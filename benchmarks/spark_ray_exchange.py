"""Spark <-> Ray in memory (orca_core.data exchange) versus a Parquet round trip, on a local context.

Spark -> Ray: `spark_to_ray(df)` then one full `iter_batches` pass, against Spark writing Parquet
then `ray.data.read_parquet` and the same pass. Ray -> Spark: `ray_to_spark(ds)` then a sum over a
column, against Ray writing Parquet then `spark.read.parquet` and the same sum. Runs alternate in one
context, after one unmeasured warm-up round. Prints medians, GB/s, the ratio exchange / Parquet
(goal <= 0.5) and the peak growth of the driver's RSS during each exchange (sampled every 5 ms;
goal < 10% of the data size).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time

from _common import median

COLUMNS = 16


class PeakRss:
    """The highest RSS of this process above its RSS at entry, sampled in a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.growth = self.peak - self.base


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def drain(ds) -> int:
    return sum(len(batch) for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gb", type=float, default=1.0, help="size of the rows in GB (default 1)")
    args = parser.parse_args()
    rows = int(args.gb * 1e9 / (COLUMNS * 8))
    store = f"{max(512, int(args.gb * 3 * 1024))}m"

    import ray.data

    from orca_core import OrcaContext, init_orca_context, stop_orca_context
    from orca_core.data import ray_to_spark, spark_to_ray

    init_orca_context(cluster_mode="local", cores=2, memory="2g", init_ray_on_spark=True, include_webui=False,
                      object_store_memory=store)
    tmp = tempfile.mkdtemp(prefix="orca-exchange-bench-")
    try:
        spark = OrcaContext.get_spark_session()
        df = spark.range(0, rows, 1, 4).selectExpr("id", *[f"rand({i}) as x{i}" for i in range(COLUMNS - 1)])
        df = df.cache()
        df.count()
        ray_source = ray.data.range(rows, override_num_blocks=8).map_batches(
            lambda b: {"id": b["id"], **{f"x{i}": b["id"] * 0.5 + i for i in range(COLUMNS - 1)}}).materialize()
        times: dict[str, list[float]] = {k: [] for k in ("s2r", "s2r_pq", "r2s", "r2s_pq")}
        rss: dict[str, list[int]] = {"s2r": [], "r2s": []}
        for run in range(args.runs + 1):  # run 0 is an unmeasured warm-up
            with PeakRss() as peak:
                t0 = time.perf_counter()
                assert drain(spark_to_ray(df)) == rows
                times["s2r"].append(time.perf_counter() - t0)
            rss["s2r"].append(peak.growth)

            path = os.path.join(tmp, f"s2r-{run}")
            t0 = time.perf_counter()
            df.write.parquet(path)
            assert drain(ray.data.read_parquet(path)) == rows
            times["s2r_pq"].append(time.perf_counter() - t0)

            with PeakRss() as peak:
                t0 = time.perf_counter()
                out = ray_to_spark(ray_source, spark)
                total = out.selectExpr("sum(id)").first()[0]
                times["r2s"].append(time.perf_counter() - t0)
            rss["r2s"].append(peak.growth)
            assert total == rows * (rows - 1) // 2
            del out

            path = os.path.join(tmp, f"r2s-{run}")
            t0 = time.perf_counter()
            ray_source.write_parquet(path)
            assert spark.read.parquet(path).selectExpr("sum(id)").first()[0] == total
            times["r2s_pq"].append(time.perf_counter() - t0)
            done = ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items())
            print(f"run {run}{' (warm-up)' if run == 0 else ''}: {done}", flush=True)
    finally:
        stop_orca_context()
        shutil.rmtree(tmp, ignore_errors=True)

    times = {k: v[1:] for k, v in times.items()}
    rss = {k: v[1:] for k, v in rss.items()}
    gb = rows * COLUMNS * 8 / 1e9
    for way, label in (("s2r", "Spark -> Ray"), ("r2s", "Ray -> Spark")):
        ours, theirs = median(times[way]), median(times[way + "_pq"])
        growth = median(rss[way])
        print(f"{label} ({gb:.2f} GB): exchange median {ours:.2f}s ({gb / ours:.2f} GB/s), Parquet median "
              f"{theirs:.2f}s ({gb / theirs:.2f} GB/s), ratio {ours / theirs:.2f}  (goal <= 0.5); driver RSS "
              f"peak growth {growth / 2**20:.0f} MiB = {growth / (gb * 1e9):.1%} of the data  (goal < 10%)")


if __name__ == "__main__":
    main()
