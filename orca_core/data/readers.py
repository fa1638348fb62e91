"""read_csv, read_json, read_parquet: files into a ShardedPandas, read as `OrcaContext.pandas_read_backend` says.

- "spark": Spark's readers (`spark.read.csv/json/parquet`) read the files, with Spark's own file
  listing, globbing, splitting and Hadoop file systems; each partition becomes one shard.
- "pandas": the driver lists the files (`orca_core.data.filesystems`) and every Spark task reads one
  file with pandas (pyarrow for parquet); each file becomes one shard.

Both give the same rows and dtypes for the same files: column types are decided over the whole
dataset by `orca_core.data.coltypes`. A pandas keyword a backend cannot honour is an error that
names it and the backend that can.
"""

from __future__ import annotations

from orca_core.data import coltypes
from orca_core.data.filesystems import filesystem
from orca_core.data.sharded import ShardedPandas
from orca_core.errors import ConfigError, ConfigTypeError

__all__ = ["ShardedPandas", "read_csv", "read_json", "read_parquet"]

_CSV_TYPES = {"dtype", "na_values", "keep_default_na", "true_values", "false_values", "parse_dates"}
_CSV = {"sep", "delimiter", "header", "names", "usecols", "comment", "quotechar", "escapechar", "encoding"}
_CSV_PANDAS = {
    "skiprows", "nrows", "compression", "skipinitialspace", "quoting", "doublequote", "skip_blank_lines",
    "lineterminator",
}
_JSON = {"lines", "encoding", "dtype"}
_JSON_PANDAS = {"orient", "compression", "nrows"}
_PARQUET = {"columns"}
_PARQUET_PANDAS = {"filters"}
_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd", ".tar": "tar"}


def read_csv(path, **kwargs) -> ShardedPandas:
    """CSV files (a path, folder, glob or list of them) as a ShardedPandas; keywords as `pandas.read_csv`."""
    backend, spark = _start("read_csv", kwargs, _CSV | _CSV_TYPES, _CSV_PANDAS)
    options = _csv_options(kwargs)
    tokens = {k: v for k, v in kwargs.items() if k not in _CSV_TYPES}
    if backend == "spark":
        raw = _spark_csv(spark, _paths(path), tokens)
    else:
        raw = _pandas_files(spark, _paths(path), _pandas_csv, tokens)
    return _typed(raw, "csv", options)


def read_json(path, **kwargs) -> ShardedPandas:
    """JSON files (`lines=True` for JSON Lines; else each file is an array of records) as a ShardedPandas.

    Columns come in the order of their names, as Spark's JSON reader gives them."""
    backend, spark = _start("read_json", kwargs, _JSON, _JSON_PANDAS)
    dtype = kwargs.pop("dtype", None)
    if backend == "spark":
        raw = _spark_json(spark, _paths(path), kwargs)
    else:
        raw = _pandas_files(spark, _paths(path), _pandas_json, kwargs)
    data = _typed(raw, "json", None)
    return data.transform_shard(lambda df: df.astype(dtype)) if dtype is not None else data


def read_parquet(path, **kwargs) -> ShardedPandas:
    """Parquet files as a ShardedPandas; `columns` selects columns. Files of one dataset share a schema."""
    backend, spark = _start("read_parquet", kwargs, _PARQUET, _PARQUET_PANDAS)
    if backend == "spark":
        df = _spark_call(path, lambda: spark.read.parquet(*_paths(path)))
        if kwargs.get("columns") is not None:
            df = df.select(*kwargs["columns"])
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(df.schema)
        raw = df.rdd.mapPartitions(lambda rows: [_arrow_frame(rows, schema)])
    else:
        raw = _pandas_files(spark, _paths(path), _pandas_parquet, kwargs)
    dtypes = coltypes.common_dtypes(raw.map(lambda df: dict(df.dtypes)).collect())
    return ShardedPandas(raw.map(lambda df: _astype(df, dtypes)))


def _start(reader: str, kwargs: dict, accepted: set, pandas_only: set):
    """The backend and the running SparkSession, once every keyword is known to be honoured."""
    from orca_core.settings import OrcaContext

    backend = OrcaContext.pandas_read_backend
    unknown = sorted(k for k in kwargs if k not in accepted | pandas_only)
    if unknown:
        raise ConfigError(
            f"{reader} does not accept {', '.join(unknown)}; accepted keywords: "
            f"{', '.join(sorted(accepted | pandas_only))}"
        )
    if backend == "spark":
        refused = sorted(k for k in kwargs if k in pandas_only)
        if refused:
            _refuse(reader, ", ".join(refused))
    return backend, OrcaContext.get_spark_session()


def _refuse(reader: str, what: str):
    raise ConfigError(
        f'{reader}: the "spark" read backend cannot honour {what}; the "pandas" backend can: '
        'set OrcaContext.pandas_read_backend = "pandas"'
    )


def _paths(path) -> list[str]:
    paths = [path] if isinstance(path, str) else list(path) if isinstance(path, (list, tuple)) else None
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigTypeError(f"path must be a path, folder or glob string, or a list of them, got {path!r}")
    return paths


def _spark_call(path, read):
    from pyspark.errors import AnalysisException

    try:
        return read()
    except AnalysisException as error:
        if "PATH_NOT_FOUND" in str(error) or "Path does not exist" in str(error):
            raise ConfigError(f"no files match {path!r}: {error}") from None
        raise


def _csv_options(kwargs: dict) -> coltypes.CsvOptions:
    parse_dates = kwargs.get("parse_dates") or ()
    if isinstance(parse_dates, str) or not all(isinstance(c, (str, int)) for c in parse_dates):
        raise ConfigError(f"parse_dates must be a list of column names, got {parse_dates!r}")
    keep = kwargs.get("keep_default_na", True)
    if not isinstance(keep, bool):
        raise ConfigTypeError(f"keep_default_na must be True or False, got {keep!r}")
    return coltypes.CsvOptions(
        na_values=kwargs.get("na_values"),
        keep_default_na=keep,
        true_values=tuple(kwargs.get("true_values") or ()),
        false_values=tuple(kwargs.get("false_values") or ()),
        dtype=kwargs.get("dtype"),
        parse_dates=tuple(parse_dates),
    )


def _typed(raw, fmt: str, options) -> ShardedPandas:
    types = coltypes.combine(raw.map(lambda df: coltypes.summarize(df, fmt, options)).collect(), fmt)
    return ShardedPandas(raw.map(lambda df: coltypes.convert(df, types, fmt, options)))


def _object_frame(columns: list, rows: list):
    import pandas as pd

    return pd.DataFrame(
        {c: pd.Series([row[i] for row in rows], dtype=object) for i, c in enumerate(columns)},
        index=pd.RangeIndex(len(rows)),
    )


def _spark_csv(spark, paths: list[str], kwargs: dict):
    header, names, usecols = kwargs.get("header", "infer"), kwargs.get("names"), kwargs.get("usecols")
    sep = kwargs.get("sep", kwargs.get("delimiter", ","))
    if header not in ("infer", 0, None):
        _refuse("read_csv", f"header={header!r} (it honours 0, None and \"infer\")")
    if not isinstance(sep, str) or not sep:
        _refuse("read_csv", f"sep={sep!r} (it needs the separator itself)")
    if usecols is not None and (callable(usecols) or isinstance(usecols, str)):
        _refuse("read_csv", "a usecols function (it honours a list of names or positions)")
    has_header = header == 0 or (header == "infer" and names is None)
    reader = spark.read.options(
        header=has_header, sep=sep, quote=kwargs.get("quotechar") or '"', escape=kwargs.get("escapechar") or '"',
        encoding=kwargs.get("encoding") or "UTF-8", inferSchema=False,
    )
    if kwargs.get("comment"):
        reader = reader.option("comment", kwargs["comment"])
    df = _spark_call(paths, lambda: reader.csv(paths))
    columns = list(df.columns) if has_header else list(range(len(df.columns)))
    if names is not None:
        if len(names) != len(columns):
            _refuse("read_csv", f"{len(names)} names for {len(columns)} columns")
        columns = list(names)
    keep = list(range(len(columns)))
    if usecols is not None:
        wanted = set(usecols)
        keep = [i for i, c in enumerate(columns) if c in wanted or i in wanted]
    columns = [columns[i] for i in keep]
    return df.rdd.mapPartitions(
        lambda rows: [_object_frame(columns, [["" if r[i] is None else r[i] for i in keep] for r in rows])]
    )


def _spark_json(spark, paths: list[str], kwargs: dict):
    reader = spark.read.options(multiLine=not kwargs.get("lines", False), mode="FAILFAST")
    if kwargs.get("encoding"):
        reader = reader.option("encoding", kwargs["encoding"])
    df = _spark_call(paths, lambda: reader.json(paths))
    columns = list(df.columns)
    return df.rdd.mapPartitions(lambda rows: [_object_frame(columns, [_plain(r) for r in rows])])


def _plain(row) -> list:
    from pyspark.sql import Row

    return [v.asDict(recursive=True) if isinstance(v, Row) else _plain(v) if isinstance(v, list) else v for v in row]


def _arrow_frame(rows, schema):
    import pyarrow as pa

    return pa.Table.from_pylist([r.asDict(recursive=True) for r in rows], schema=schema).to_pandas()


def _astype(df, dtypes: dict):
    import pandas as pd

    return pd.DataFrame(
        {c: (df[c] if c in df.columns else pd.Series([None] * len(df))).astype(d) for c, d in dtypes.items()},
        index=pd.RangeIndex(len(df)),
    )


def _pandas_files(spark, paths: list[str], read, kwargs: dict):
    """One task, and one raw shard, per file the paths name."""
    files = []
    for url in paths:
        fs = filesystem(url)
        found = fs.expand(url)
        if not found:
            raise ConfigError(f"no files match {url!r}")
        files += [(fs, f) for f in found]
    return spark.sparkContext.parallelize(files, len(files)).map(lambda item: _read_one(item, read, kwargs))


def _read_one(item, read, kwargs: dict):
    import os

    fs, path = item
    kwargs = dict(kwargs)
    if kwargs.get("compression", "infer") == "infer" and read is not _pandas_parquet:
        kwargs["compression"] = _SUFFIXES.get(os.path.splitext(path)[1].lower())
    with fs.open(path) as handle:
        return read(handle, kwargs)


def _pandas_csv(handle, kwargs: dict):
    import pandas as pd

    df = pd.read_csv(handle, dtype=str, keep_default_na=False, na_filter=False, **kwargs)
    return df.astype(object)


def _pandas_json(handle, kwargs: dict):
    import pandas as pd

    df = pd.read_json(handle, dtype=False, convert_dates=False, precise_float=True, **kwargs)
    return df.astype(object)


def _pandas_parquet(handle, kwargs: dict):
    import pyarrow.parquet as pq

    return pq.read_table(handle, **kwargs).to_pandas(ignore_metadata=True)
