"""DISK_4 inside Spark tasks on local[2]: the driver's setting, the Spark local dir, memory near 1/4."""

import os
import sys

import pytest

from orca_core import OrcaContext
from orca_core.settings import worker_env

ROWS, COLUMNS = 4_000_000, 10  # 320 MB in two tasks
FIXED = 96 << 20


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    OrcaContext.train_data_store = "DISK_4"
    builder = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
    )
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers must run this interpreter (it has pyarrow)
    for key, value in worker_env().items():  # how init_orca_context carries the settings to workers
        builder = builder.config(f"spark.executorEnv.{key}", value)
    session = builder.getOrCreate()
    yield session
    session.stop()
    OrcaContext.reset()
    if saved is None:
        os.environ.pop("PYSPARK_PYTHON")
    else:
        os.environ["PYSPARK_PYTHON"] = saved


def train_task(store):
    def run(batches):
        import pyarrow as pa

        from orca_core.data import open_training_data

        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024

        first = next(batches)
        open("/proc/self/clear_refs", "w").write("5")
        base = status("VmRSS")

        def source():
            yield first
            yield from batches

        with open_training_data(source(), store=store) as td:
            directory = getattr(td._store, "dir", "")
            seen = sum(b.num_rows for b in td.epoch(batch_size=512, shuffle=True, seed=0))
            nbytes = td.num_rows * COLUMNS * 8
            setting = td.setting
        local_dirs = os.environ.get("SPARK_LOCAL_DIRS", "").split(",")
        yield pa.record_batch({
            "setting": [setting], "rows": [seen], "nbytes": [nbytes], "peak": [status("VmHWM") - base],
            "in_spark_dir": [any(directory.startswith(d + os.sep) for d in local_dirs if d)],
            "left": [os.path.exists(directory)],
        })

    return run


SCHEMA = "setting string, rows long, nbytes long, peak long, in_spark_dir boolean, left boolean"


def run_job(spark, store):
    columns = ["id", *(f"rand({i}) as x{i}" for i in range(COLUMNS - 1))]
    df = spark.range(0, ROWS, numPartitions=2).selectExpr(*columns)
    return [row.asDict() for row in df.mapInArrow(train_task(store), SCHEMA).collect()]


def test_disk_4_inside_spark_tasks(spark):
    disk = run_job(spark, None)
    dram = run_job(spark, "DRAM")
    assert [r["setting"] for r in disk] == ["DISK_4", "DISK_4"]  # the driver's setting reached the tasks
    assert [r["setting"] for r in dram] == ["DRAM", "DRAM"]
    assert sum(r["rows"] for r in disk) == sum(r["rows"] for r in dram) == ROWS
    assert all(r["in_spark_dir"] and not r["left"] for r in disk)
    for d, m in zip(disk, dram, strict=True):
        assert m["peak"] >= 0.95 * m["nbytes"]  # the measurement sees the data
        assert d["peak"] <= d["nbytes"] / 4 + FIXED, (d, m)
        assert d["peak"] <= 0.6 * m["peak"], (d, m)
