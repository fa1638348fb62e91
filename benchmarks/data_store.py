"""DISK_4 versus DRAM on about 1 GB of numeric rows streamed in as record batches.

The rows are written once to an Arrow IPC stream, which each run reads batch by batch as a Spark
task reads `mapInArrow` input. Each run opens one store in a fresh interpreter (runs alternate),
then reads two shuffled epochs.
Prints medians and two ratios: epoch throughput DISK_4 / DRAM (goal >= 0.8) and peak RSS
DISK_4 / DRAM (goal <= 0.35). Peak RSS is the process's whole high-water mark (VmHWM), counted
from the start of the interpreter.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _common import median, run_json

CHILD = """
import json, time
import numpy as np, pyarrow as pa
from orca_core.data import open_training_data

ROWS = {rows}

def source():
    return iter(pa.ipc.open_stream(pa.OSFile({path!r})))

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

t0 = time.perf_counter()
td = open_training_data(source(), store={store!r})
opened = time.perf_counter() - t0
epochs = []
for seed in range(2):
    t0 = time.perf_counter()
    rows = sum(batch.num_rows for batch in td.epoch(batch_size=1024, shuffle=True, seed=seed))
    epochs.append(time.perf_counter() - t0)
    assert rows == ROWS, rows
td.close()
print(json.dumps({{"open": opened, "epoch": min(epochs), "peak": hwm()}}))
"""
COLUMNS, BATCH = 16, 10000


def write_stream(path: str, rows: int) -> None:
    """`rows` rows of an int64 id and 15 float64 columns, in batches of BATCH rows."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    writer = None
    with pa.OSFile(path, "wb") as sink:
        for start in range(0, rows, BATCH):
            n = min(BATCH, rows - start)
            columns = {"id": np.arange(start, start + n)}
            columns.update({f"x{i}": rng.random(n) for i in range(COLUMNS - 1)})
            batch = pa.RecordBatch.from_pydict(columns)
            writer = writer or pa.ipc.new_stream(sink, batch.schema)
            writer.write_batch(batch)
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gb", type=float, default=1.0, help="size of the data in GB (default 1)")
    args = parser.parse_args()
    rows = int(args.gb * 1e9 / (COLUMNS * 8))
    results: dict[str, list[dict]] = {"DRAM": [], "DISK_4": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.arrows")
        write_stream(path, rows)
        for i in range(args.runs):
            for store in results:
                results[store].append(run_json(CHILD.format(rows=rows, store=store, path=path)))
                r = results[store][-1]
                print(
                    f"run {i + 1} {store}: open {r['open']:.2f}s, epoch {r['epoch']:.2f}s, "
                    f"peak RSS {r['peak'] / 2**20:.0f} MiB",
                    flush=True,
                )
    size = rows * COLUMNS * 8 / 2**20
    summary = {s: {k: median([r[k] for r in rs]) for k in ("open", "epoch", "peak")} for s, rs in results.items()}
    for store, m in summary.items():
        print(
            f"{store} ({size:.0f} MiB of rows): open {m['open']:.2f}s, epoch {m['epoch']:.2f}s "
            f"({size / m['epoch']:.0f} MiB/s), peak RSS {m['peak'] / 2**20:.0f} MiB"
        )
    throughput = summary["DRAM"]["epoch"] / summary["DISK_4"]["epoch"]
    memory = summary["DISK_4"]["peak"] / summary["DRAM"]["peak"]
    print(f"epoch throughput DISK_4 / DRAM: ratio {throughput:.2f}  (goal >= 0.8)")
    print(f"peak RSS DISK_4 / DRAM: ratio {memory:.2f}  (goal <= 0.35)")


if __name__ == "__main__":
    main()
