"""Spark DataFrame <-> Ray Dataset on a local context (Ray head beside local Spark)."""

import datetime
import decimal

import pytest

from orca_core import OrcaContext, init_orca_context, stop_orca_context
from orca_core.data import ray_to_spark, spark_to_ray
from orca_core.errors import ConfigTypeError

SCHEMA = ("i long, n int, f double, s string, t timestamp, d decimal(12,3), l array<bigint>, "
          "ll array<array<string>>, b boolean, day date")
ROWS = [
    (1, 7, 1.5, "a", datetime.datetime(2020, 1, 2, 3, 4, 5, 6), decimal.Decimal("12.345"), [1, 2, None],
     [["x"], []], True, datetime.date(2021, 5, 6)),
    (None, None, None, None, None, None, None, None, None, None),
    (-(2**62), -3, float("inf"), "ünï", datetime.datetime(1999, 12, 31, 23, 59, 59), decimal.Decimal("-0.001"), [],
     [None, ["y", None]], False, datetime.date(1970, 1, 1)),
]


@pytest.fixture(scope="module")
def spark():
    init_orca_context(cluster_mode="local", cores=2, memory="1g", init_ray_on_spark=True, include_webui=False,
                      object_store_memory="100m")
    yield OrcaContext.get_spark_session()
    stop_orca_context()


def test_every_column_round_trips(spark):
    df = spark.createDataFrame(ROWS, SCHEMA).repartition(2).sortWithinPartitions("i")
    expected = sorted(df.collect(), key=repr)
    ds = spark_to_ray(df)
    assert ds.count() == 3
    types = dict(zip(ds.schema().names, map(str, ds.schema().types), strict=True))
    assert types["i"] == "int64" and types["n"] == "int32" and types["d"] == "decimal128(12, 3)"
    assert types["t"].startswith("timestamp[us") and types["l"] == "list<element: int64>"
    back = ray_to_spark(ds)
    assert back.schema == spark.createDataFrame([], SCHEMA).schema
    got = sorted(back.collect(), key=repr)
    for column in back.columns:
        assert [r[column] for r in got] == [r[column] for r in expected], column


def test_dataset_outlives_the_spark_job_and_its_python_workers(spark):
    ds = spark_to_ray(spark.range(0, 10000, 1, 4).selectExpr("id", "id * 2 as twice"))
    spark.sparkContext.parallelize(range(8), 8).count()  # other jobs reuse and replace the workers
    rows = ds.take_all()
    assert [r["id"] for r in rows] == list(range(10000)) and all(r["twice"] == 2 * r["id"] for r in rows)


def test_more_data_than_the_object_store_spills(spark):
    import ray

    store = ray.cluster_resources()["object_store_memory"]
    df = spark.range(0, 60, 1, 6).selectExpr("id", "repeat(cast(id as string), 4000000) as blob")  # ~240 MB
    ds = spark_to_ray(df)
    assert ds.size_bytes() > 2 * store
    lengths = {r["id"]: len(r["blob"]) for r in ds.iter_rows()}
    assert len(lengths) == 60 and all(n >= 4_000_000 for n in lengths.values())


def test_dataset_larger_than_the_object_store_reaches_spark(spark):
    import ray
    import ray.data

    store = ray.cluster_resources()["object_store_memory"]
    ds = ray.data.range(60, override_num_blocks=6).map(lambda r: {"id": r["id"], "blob": "x" * 4_000_000})
    df = ray_to_spark(ds, spark)  # materializes ~240 MB in Ray: spilled, then restored for Spark
    got = df.selectExpr("count(*) as n", "sum(length(blob)) as chars", "sum(id) as ids").first()
    assert (got["n"], got["chars"], got["ids"]) == (60, 60 * 4_000_000, sum(range(60)))
    assert 60 * 4_000_000 > 2 * store


def test_empty_dataframe_keeps_its_schema(spark):
    ds = spark_to_ray(spark.range(0).selectExpr("id", "cast(id as string) as s"))
    assert ds.count() == 0 and ds.schema().names == ["id", "s"]


def test_not_a_dataframe(spark):
    import ray.data

    with pytest.raises(ConfigTypeError, match="pyspark.sql.DataFrame, got list"):
        spark_to_ray([1, 2])
    with pytest.raises(ConfigTypeError, match="ray_to_spark"):
        spark_to_ray(ray.data.range(3))
    with pytest.raises(ConfigTypeError, match="ray.data.Dataset, got DataFrame"):
        ray_to_spark(spark.range(3))


def test_unsupported_spark_type_names_the_column(spark):
    from pyspark.ml.linalg import Vectors

    interval = spark.sql("select 1 as ok, interval 2 years as span")
    with pytest.raises(ConfigTypeError, match='column "span" has Spark type interval year'):
        spark_to_ray(interval)
    vectors = spark.createDataFrame([(Vectors.dense([1.0, 2.0]),)], ["features"])
    with pytest.raises(ConfigTypeError, match='column "features" has type vector.*vector_to_array'):
        spark_to_ray(vectors)


def test_unsupported_arrow_type_names_the_column(spark):
    import pyarrow as pa
    import ray.data

    ds = ray.data.from_arrow(pa.table({"ok": [1], "big": pa.array([1], pa.uint64())}))
    with pytest.raises(ConfigTypeError, match='column "big" has Arrow type uint64'):
        ray_to_spark(ds)
