"""read_csv/read_json/read_parquet: both read backends give the rows and dtypes of one pandas read of all files."""

import glob
import gzip
import io
import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orca_core import OrcaContext, OrcaError, init_orca_context, stop_orca_context
from orca_core.context import current
from orca_core.data import ShardedPandas, read_csv, read_json, read_parquet

BACKENDS = ["spark", "pandas"]
HEADER = "id,name,score,count,flag,note,mixed,empty,when\n"
CSV_FILES = {
    "a.csv": '1,alice,1.5,10,True,,7,,2020-01-02\n2,"bob, jr",2.0,,false,hello,x,,2020-02-03\n',
    "b.csv": '3,carol,NaN,30,TRUE,"quoted ""x""",8,,2021-03-04\n4,,4.25,40,,NA,9,,2021-04-05\n5,eve,-1e3,50,False,n/a,10,,2022-05-06\n',
}
JSON_FILES = {
    "a.json": [
        {"id": 1, "name": "alice", "score": 1.5, "count": 10, "flag": True, "mixed": 1, "tags": ["x"]},
        {"id": 2, "name": None, "score": 2, "count": None, "flag": False, "mixed": "two"},
    ],
    "b.json": [
        {"id": 3, "name": "carol", "score": 3.25, "count": 30, "mixed": True, "extra": "only here"},
        {"id": 4, "name": "dan", "score": None, "count": 40, "flag": True, "mixed": 4.5},
    ],
}


def test_reading_needs_a_running_context(tmp_path):
    assert current() is None
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(OrcaError, match="init_orca_context"):
        read_csv(str(tmp_path / "x.csv"))


@pytest.fixture(scope="module")
def spark():
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    init_orca_context(cluster_mode="local", cores=2)
    yield OrcaContext.get_spark_session()
    stop_orca_context()


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("csv")
    for name, body in CSV_FILES.items():
        (root / name).write_text(HEADER + body)
    (root / "_SUCCESS").write_text("")
    (root / ".a.csv.crc").write_text("not csv")
    return root


def _one_file(tmp_path, texts, header=HEADER):
    """What pandas reads when every file's rows are in one file."""
    path = tmp_path / "all.csv"
    path.write_text(header + "".join(texts))
    return path


def _read(backend, reader, path, **kwargs):
    OrcaContext.pandas_read_backend = backend
    data = reader(path, **kwargs)
    assert isinstance(data, ShardedPandas)
    return data


def _sorted(df, by="id"):
    return df.sort_values(by, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("form", ["folder", "glob", "list", "file-url"])
def test_csv_backends_agree_with_one_pandas_read(spark, csv_dir, tmp_path, form):
    path = {
        "folder": str(csv_dir),
        "glob": str(csv_dir / "*.csv"),
        "list": [str(csv_dir / "a.csv"), str(csv_dir / "b.csv")],
        "file-url": f"file://{csv_dir}",
    }[form]
    expected = pd.read_csv(_one_file(tmp_path, CSV_FILES.values()))
    assert expected["count"].dtype == "float64" and expected["mixed"].dtype == "str"  # the oracle is not trivial
    frames = {}
    for backend in BACKENDS:
        data = _read(backend, read_csv, path)
        frames[backend] = data.to_pandas()
        pd.testing.assert_frame_equal(_sorted(frames[backend]), expected)
        assert all(list(shard.dtypes) == list(expected.dtypes) for shard in data.collect())
    assert _read("pandas", read_csv, path).num_partitions() == 2


def test_csv_keywords_are_honoured_alike(spark, tmp_path):
    rows = ["1;x;2020-01-02;yes\n", "2;-;2021-02-03;no\n", "3;z;;yes\n"]
    folder = tmp_path / "semi"
    folder.mkdir()
    (folder / "p1.csv").write_text("".join(rows[:2]))
    with gzip.open(folder / "p2.csv.gz", "wt") as f:
        f.write(rows[2])
    kwargs = dict(
        sep=";", header=None, names=["id", "code", "day", "ok"], usecols=["id", "code", "ok", "day"],
        na_values=["-"], parse_dates=["day"], true_values=["yes"], false_values=["no"], dtype={"id": "int32"},
    )
    expected = pd.read_csv(io.StringIO("".join(rows)), **kwargs)
    assert list(expected.dtypes.astype(str)) == ["int32", "str", "datetime64[us]", "bool"]
    for backend in BACKENDS:
        got = _sorted(_read(backend, read_csv, str(folder), **kwargs).to_pandas())
        pd.testing.assert_frame_equal(got, expected)


def test_csv_dtype_str_and_keep_default_na(spark, csv_dir, tmp_path):
    kwargs = dict(dtype={"id": str, "count": str}, keep_default_na=False, na_values=[""])
    expected = pd.read_csv(_one_file(tmp_path, CSV_FILES.values()), **kwargs)
    assert expected["note"].tolist()[-2:] == ["NA", "n/a"]
    for backend in BACKENDS:
        got = _sorted(_read(backend, read_csv, str(csv_dir / "*.csv"), **kwargs).to_pandas(), by="name")
        pd.testing.assert_frame_equal(got, _sorted(expected, by="name"))


def test_csv_without_header_names_columns_by_position(spark, tmp_path):
    (tmp_path / "n.csv").write_text("1,a\n2,b\n")
    for backend in BACKENDS:
        got = _read(backend, read_csv, str(tmp_path / "n.csv"), header=None).to_pandas()
        pd.testing.assert_frame_equal(got, pd.DataFrame({0: [1, 2], 1: ["a", "b"]}))


@pytest.fixture(scope="module")
def json_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("json")
    for name, records in JSON_FILES.items():
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in records))
        (root / (name + "a")).write_text(json.dumps(records))
    return root


def test_json_backends_agree_and_follow_the_documented_types(spark, json_dir):
    frames = {}
    for backend in BACKENDS:
        data = _read(backend, read_json, str(json_dir / "*.json"), lines=True)
        frames[backend] = _sorted(data.to_pandas())
        assert all(list(shard.columns) == list(frames[backend].columns) for shard in data.collect())
    pd.testing.assert_frame_equal(frames["spark"], frames["pandas"])
    got = frames["pandas"]
    assert list(got.columns) == ["count", "extra", "flag", "id", "mixed", "name", "score", "tags"]
    assert {c: str(t) for c, t in got.dtypes.items()} == {
        "count": "float64", "extra": "str", "flag": "object", "id": "int64",
        "mixed": "str", "name": "str", "score": "float64", "tags": "object",
    }
    assert got["mixed"].tolist() == ["1", "two", "true", "4.5"]
    assert got["flag"].tolist()[:2] == [True, False] and pd.isna(got["flag"][2])
    assert got["tags"][0] == ["x"] and got["count"].isna().tolist() == [False, True, False, False]
    one = pd.read_json(io.StringIO("".join(json.dumps(r) + "\n" for rs in JSON_FILES.values() for r in rs)),
                       lines=True)
    pd.testing.assert_frame_equal(got[["id", "score", "count"]], one[["id", "score", "count"]].astype(
        {"score": "float64", "count": "float64"}))


def test_json_arrays_and_dtype(spark, json_dir):
    frames = [
        _sorted(_read(b, read_json, str(json_dir / "*.jsona"), dtype={"id": "int16"}).to_pandas()) for b in BACKENDS
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert frames[0]["id"].dtype == "int16" and frames[0]["id"].tolist() == [1, 2, 3, 4]


def test_parquet_backends_agree_with_pandas_concat(spark, tmp_path):
    first = pa.table({"id": pa.array([1, 2], pa.int32()), "v": pa.array([1, 2], pa.int64()),
                      "s": ["a", "b"], "b": [True, False]})
    second = pa.table({"id": pa.array([3, 4], pa.int32()), "v": pa.array([None, 4], pa.int64()),
                       "s": [None, "c"], "b": pa.array([None, True], pa.bool_())})
    pq.write_table(first, tmp_path / "p1.parquet")
    pq.write_table(second, tmp_path / "p2.parquet")
    expected = pd.concat([first.to_pandas(), second.to_pandas()], ignore_index=True)
    assert list(expected.dtypes.astype(str)) == ["int32", "float64", "str", "object"]
    for backend in BACKENDS:
        data = _read(backend, read_parquet, str(tmp_path))
        pd.testing.assert_frame_equal(_sorted(data.to_pandas()), expected)
        assert all(list(s.dtypes) == list(expected.dtypes) for s in data.collect())
        only = _read(backend, read_parquet, str(tmp_path / "*.parquet"), columns=["s", "id"]).to_pandas()
        assert sorted(only.columns) == ["id", "s"] and len(only) == 4


def test_sharded_pandas_operations(spark, csv_dir):
    OrcaContext.pandas_read_backend = "pandas"
    data = read_csv(str(csv_dir))
    doubled = data.transform_shard(lambda df, k: df.assign(twice=df["id"] * k), 2)
    assert isinstance(doubled, ShardedPandas) and doubled.num_partitions() == 2
    assert sorted(doubled.to_pandas()["twice"]) == [2, 4, 6, 8, 10]
    sdf = data.to_spark_df()
    assert sdf.count() == 5 and sdf.columns == list(data.to_pandas().columns)
    rows = {r["id"]: r for r in sdf.collect()}
    assert rows[2]["count"] is None and rows[2]["flag"] is False and rows[4]["flag"] is None
    assert rows[1]["empty"] is None and rows[3]["note"] == 'quoted "x"'


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_path_that_matches_nothing_is_an_error(spark, tmp_path, backend):
    with pytest.raises(OrcaError, match="no files match"):
        _read(backend, read_csv, str(tmp_path / "nothing*.csv"))


def test_keywords_the_spark_backend_cannot_honour_name_the_pandas_backend(csv_dir):
    OrcaContext.pandas_read_backend = "spark"
    with pytest.raises(OrcaError, match=r'cannot honour nrows, skiprows; the "pandas" backend can'):
        read_csv(str(csv_dir), nrows=1, skiprows=1)
    with pytest.raises(OrcaError, match=r"cannot honour filters.*pandas_read_backend"):
        read_parquet(str(csv_dir), filters=[("id", "=", 1)])
    with pytest.raises(OrcaError, match=r"does not accept index_col; accepted keywords: .*usecols"):
        read_csv(str(csv_dir), index_col=0)


def test_value_the_spark_backend_cannot_honour(spark, csv_dir):
    OrcaContext.pandas_read_backend = "spark"
    with pytest.raises(OrcaError, match=r"header=2 .*\"pandas\" backend can"):
        read_csv(str(csv_dir), header=2)
    OrcaContext.pandas_read_backend = "pandas"
    assert len(read_csv(str(csv_dir / "b.csv"), header=1).to_pandas()) == 2


MOUNTED = """
import os

from orca_core import hookimpl
from orca_core.data.filesystems import LocalFileSystem
from orca_core.records import FileSystemProvider

ROOT = {root!r}


class MountedFileSystem(LocalFileSystem):  # data://x is <ROOT>/x
    def expand(self, url):
        return [f"data://{{os.path.relpath(p, ROOT)}}" for p in super().expand(os.path.join(ROOT, url[7:]))]

    def open(self, path):
        return super().open(os.path.join(ROOT, path[7:]))


@hookimpl
def orca_filesystems():
    yield FileSystemProvider("data", lambda url: MountedFileSystem(), "a folder of this machine as data://")
"""


def test_a_plugin_scheme_is_used_by_the_pandas_backend(spark, csv_dir, fake_distribution):
    import importlib

    from pyspark import cloudpickle

    fake_distribution("orca-mounted", {"mounted": "orca_mounted"},
                      {"orca_mounted.py": MOUNTED.format(root=str(csv_dir))})
    cloudpickle.register_pickle_by_value(importlib.import_module("orca_mounted"))
    OrcaContext.pandas_read_backend = "pandas"
    got = read_csv("data://*.csv").to_pandas()
    pd.testing.assert_frame_equal(_sorted(got), _sorted(read_csv(str(csv_dir)).to_pandas()))
    assert sorted(glob.glob(str(csv_dir / "*.csv"))) and np.array_equal(sorted(got["id"]), [1, 2, 3, 4, 5])
