"""ShardedPandas: a dataset held as pandas DataFrames, one per Spark partition, in the executors."""

from __future__ import annotations

from collections.abc import Callable

from orca_core.errors import ConfigError


class ShardedPandas:
    """One pandas DataFrame per partition of `rdd`; transformations run where the shards are."""

    def __init__(self, rdd):
        self.rdd = rdd

    def num_partitions(self) -> int:
        return self.rdd.getNumPartitions()

    def collect(self) -> list:
        """Every shard, in partition order."""
        return self.rdd.collect()

    def to_pandas(self):
        """All shards concatenated into one DataFrame (index 0..n-1) on the driver."""
        import pandas as pd

        frames = self.collect()
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def transform_shard(self, fn: Callable, *args) -> ShardedPandas:
        """A new dataset whose shards are `fn(shard, *args)` (lazy, run in the executors)."""
        return ShardedPandas(self.rdd.map(lambda shard: fn(shard, *args)))

    def to_spark_df(self):
        """A Spark DataFrame of the same rows; missing values become nulls."""
        import pyarrow as pa
        from pyspark.sql.pandas.types import from_arrow_schema

        from orca_core.settings import OrcaContext

        try:
            schema = pa.unify_schemas(self.rdd.map(_arrow_schema).collect())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise ConfigError(
                f"these shards cannot become one Spark DataFrame: {error}. A column must hold one type in "
                "every shard: convert it with transform_shard(lambda df: df.astype({...})) first"
            ) from error
        names = schema.names
        rows = self.rdd.flatMap(lambda shard: _rows(shard, schema, names))
        return OrcaContext.get_spark_session().createDataFrame(rows, from_arrow_schema(schema))


def _arrow_schema(shard):
    import pyarrow as pa

    shard = shard.rename(columns=str)
    return pa.Schema.from_pandas(shard, preserve_index=False).remove_metadata()


def _rows(shard, schema, names):
    import pyarrow as pa

    table = pa.Table.from_pandas(shard.rename(columns=str), schema=schema, preserve_index=False)
    return [tuple(row[n] for n in names) for row in table.to_pylist()]
