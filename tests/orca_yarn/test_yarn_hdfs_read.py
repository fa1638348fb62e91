"""hdfs:// and webhdfs:// paths for the "pandas" read backend, read through the WebHDFS test server by the
tasks of a local Spark context, give what the same files read locally give. One Spark start for the module."""

from __future__ import annotations

import gzip
import pickle
import re
import socket

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orca_core import OrcaContext, OrcaError, init_orca_context, stop_orca_context
from orca_core.errors import PluginConflict
from orca_core.plugins import get_plugin_manager

HEADER = "id,name,score,flag,note\n"
FILES = {
    "part-0.csv": "1,alice,1.5,True,\n2,\"bob, jr\",2.0,false,hello\n",
    "part-1.csv": "3,carol,NaN,TRUE,\"quoted \"\"x\"\"\"\n4,,4.25,,NA\n",
    "extra.csv": "5,eve,-1e3,False,n/a\n",
}
SECOND_HDFS = """
from orca_core import hookimpl
from orca_core.records import FileSystemProvider


@hookimpl
def orca_filesystems():
    yield FileSystemProvider("hdfs", lambda url: None, "another HDFS")
"""


@pytest.fixture(scope="module")
def spark():
    init_orca_context(cluster_mode="local", cores=2)
    yield OrcaContext.get_spark_session()
    stop_orca_context()


@pytest.fixture(autouse=True)
def pandas_backend():
    OrcaContext.pandas_read_backend = "pandas"  # every test's settings are reset after it


def _write(folder, gz_name=None):
    """The CSV files, plus what Spark skips (_SUCCESS, .crc) and optionally one of them gzipped."""
    folder.mkdir(parents=True)
    for name, body in FILES.items():
        if name == gz_name:
            with gzip.open(folder / f"{name}.gz", "wt") as f:
                f.write(HEADER + body)
        else:
            (folder / name).write_text(HEADER + body)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.csv.crc").write_text("not csv")
    return folder


@pytest.fixture
def files(tmp_path, webhdfs, hadoop_conf, monkeypatch):
    """The same files in a local folder and in HDFS at /data/csv; HADOOP_CONF_DIR points at the server."""
    monkeypatch.setenv("HADOOP_CONF_DIR", str(hadoop_conf))
    monkeypatch.delenv("ORCA_WEBHDFS_URL", raising=False)
    _write(tmp_path / "hdfs" / "data" / "csv", gz_name="extra.csv")
    return _write(tmp_path / "local" / "csv", gz_name="extra.csv")


def _sorted(df):
    return df.sort_values("id").reset_index(drop=True)


def _same(got, local):
    """Same rows and dtypes as the local read; the local read itself is the one pandas read of all rows."""
    pd.testing.assert_frame_equal(_sorted(got), _sorted(local))
    assert list(_sorted(local)["id"]) == [1, 2, 3, 4, 5] and local["score"].dtype == "float64"


def test_a_folder_from_hdfs_reads_as_the_local_folder(spark, files, webhdfs):
    from orca_core.data import read_csv

    local = read_csv(str(files))
    for url in ("hdfs://127.0.0.1:8020/data/csv", "hdfs:///data/csv", "hdfs://127.0.0.1/data/csv/"):
        data = read_csv(url)
        assert data.num_partitions() == 3  # one shard per visible file: _SUCCESS and .crc skipped
        _same(data.to_pandas(), local.to_pandas())
    assert {path for _, op, path in webhdfs.requests if op == "OPEN"} == {
        "/data/csv/part-0.csv", "/data/csv/part-1.csv", "/data/csv/extra.csv.gz"
    }


def test_a_glob_from_hdfs_reads_as_the_local_glob(spark, files, webhdfs):
    from orca_core.data import read_csv

    got = read_csv("hdfs:///data/*/part-*.csv", sep=",", parse_dates=None)
    local = read_csv(str(files / "part-*.csv"))
    assert got.num_partitions() == 2
    pd.testing.assert_frame_equal(_sorted(got.to_pandas()), _sorted(local.to_pandas()))
    assert list(_sorted(got.to_pandas())["id"]) == [1, 2, 3, 4]


def test_parquet_and_webhdfs_urls(spark, files, webhdfs, tmp_path):
    from orca_core.data import read_parquet

    table = pa.table({"id": [1, 2, 3], "x": [0.5, None, 2.5], "s": ["a", "b", None]})
    (tmp_path / "hdfs" / "pq").mkdir()
    pq.write_table(table, tmp_path / "hdfs" / "pq" / "t.parquet")
    host, port = webhdfs.server_address[:2]
    for url in ("hdfs:///pq", f"webhdfs://{host}:{port}/pq/*.parquet"):
        got = read_parquet(url, columns=["id", "x"]).to_pandas()
        pd.testing.assert_frame_equal(got, table.select(["id", "x"]).to_pandas())


def test_a_missing_path_is_a_clear_error(spark, files):
    from orca_core.data import read_csv

    for url in ("hdfs:///data/nothing", "hdfs:///data/csv/*.json", "hdfs:///no/*/where.csv"):
        with pytest.raises(OrcaError, match=re.escape(f"no files match '{url}'")):
            read_csv(url)


def test_nameservices_fail_over_and_orca_webhdfs_url_wins(spark, files, webhdfs, tmp_path, monkeypatch):
    from orca_core.data import read_csv

    with socket.socket() as s:  # a port nobody listens on: the first NameNode is down
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    conf = tmp_path / "ha-conf"
    conf.mkdir()
    up = webhdfs.url.split("://", 1)[1]
    (conf / "hdfs-site.xml").write_text(
        "<configuration>" + "".join(
            f"<property><name>{k}</name><value>{v}</value></property>" for k, v in {
                "dfs.nameservices": "ns1", "dfs.ha.namenodes.ns1": "nn1,nn2",
                "dfs.namenode.http-address.ns1.nn1": f"127.0.0.1:{down}",
                "dfs.namenode.http-address.ns1.nn2": up,
            }.items()
        ) + "</configuration>"
    )
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf))
    local = read_csv(str(files)).to_pandas()
    _same(read_csv("hdfs://ns1/data/csv").to_pandas(), local)
    monkeypatch.setenv("ORCA_WEBHDFS_URL", f"http://127.0.0.1:{down}")
    with pytest.raises(OrcaError, match=rf"cannot reach WebHDFS at http://127.0.0.1:{down} .*ORCA_WEBHDFS_URL"):
        read_csv("hdfs://ns1/data/csv")
    monkeypatch.setenv("ORCA_WEBHDFS_URL", webhdfs.url)
    monkeypatch.delenv("HADOOP_CONF_DIR")
    _same(read_csv("hdfs://anywhere:8020/data/csv").to_pandas(), local)


def test_without_a_namenode_address_the_error_says_how_to_give_one(spark, monkeypatch):
    from orca_core.data import read_csv

    monkeypatch.delenv("ORCA_WEBHDFS_URL", raising=False)
    with pytest.raises(OrcaError, match="HADOOP_CONF_DIR is not set.*ORCA_WEBHDFS_URL=http://namenode:9870"):
        read_csv("hdfs://nn:8020/data")


def test_the_file_system_pickles_without_its_client(files, webhdfs):
    from orca_core.data.filesystems import filesystem

    fs = filesystem("hdfs:///data/csv")
    assert fs.expand("hdfs:///data/csv/part-*") == ["hdfs:///data/csv/part-0.csv", "hdfs:///data/csv/part-1.csv"]
    copy = pickle.loads(pickle.dumps(fs))
    assert copy._client is None and fs._client is not None
    with copy.open("hdfs:///data/csv/part-1.csv") as f:
        assert f.read() == (HEADER + FILES["part-1.csv"]).encode()


def test_a_second_hdfs_provider_conflicts_with_orca_yarn(fake_distribution):
    fake_distribution("orca-otherhdfs", {"otherhdfs": "orca_otherhdfs"}, {"orca_otherhdfs.py": SECOND_HDFS})
    with pytest.raises(PluginConflict, match='"hdfs://" is provided twice') as info:
        get_plugin_manager()
    assert "orca-yarn" in str(info.value) and "orca-otherhdfs" in str(info.value)
