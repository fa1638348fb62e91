"""Fixtures for orca-yarn: WebHDFS and ResourceManager servers on loopback, a Hadoop conf dir
pointing at them, and a Spark home whose spark-submit records how it was called."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"orca_yarn_test_servers_{name}", HERE / "servers" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


webhdfs_server = _load("webhdfs")
rm_server = _load("resourcemanager")

APP_ID = "application_1700000000000_0042"


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """Each test starts without Hadoop/Spark variables and with its own Orca cache."""
    for name in ("HADOOP_CONF_DIR", "HADOOP_USER_NAME", "SPARK_HOME", "PYSPARK_PYTHON", "CONTAINER_ID",
                 "APP_SUBMIT_TIME_ENV", "PYSPARK_GATEWAY_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "orca-cache"))


@pytest.fixture
def webhdfs(tmp_path):
    root = tmp_path / "hdfs"
    root.mkdir()
    server = webhdfs_server.WebHdfsServer(str(root)).start()
    yield server
    server.stop()


@pytest.fixture
def rm():
    server = rm_server.ResourceManagerServer(max_memory_mb=8192, max_vcores=4,
                                             queues={"default": (8192, 4), "small": (2048, 2)}).start()
    yield server
    server.stop()


def _site(path: Path, props: dict[str, str]) -> None:
    rows = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n" for k, v in props.items())
    path.write_text(f'<?xml version="1.0"?>\n<configuration>\n{rows}</configuration>\n')


def _write_hadoop_conf(folder: Path, rm_url: str, webhdfs_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _site(folder / "core-site.xml", {"fs.defaultFS": "hdfs://127.0.0.1:8020"})
    _site(folder / "hdfs-site.xml", {"dfs.namenode.http-address": webhdfs_url.split("://", 1)[1]})
    rm_host, rm_port = rm_url.split("://", 1)[1].split(":")
    _site(folder / "yarn-site.xml", {
        "yarn.resourcemanager.hostname": rm_host,
        "yarn.resourcemanager.webapp.address": "${yarn.resourcemanager.hostname}:" + rm_port,
        "yarn.scheduler.maximum-allocation-mb": "8192",
    })
    return folder


@pytest.fixture
def hadoop_conf(tmp_path, rm, webhdfs) -> Path:
    return _write_hadoop_conf(tmp_path / "hadoop-conf", rm.url, webhdfs.url)


@pytest.fixture
def write_hadoop_conf():
    """`write_hadoop_conf(folder, rm_url, webhdfs_url)`: a conf dir pointing at those addresses."""
    return _write_hadoop_conf


SPARK_SUBMIT = '''\
#!{python}
"""A spark-submit stand-in: records its argv, environment and properties file (entries and mode), prints
what Spark's YARN client prints."""
import json, os, sys
args = sys.argv[1:]
conf, mode = {{}}, None
if "--properties-file" in args:
    path = args[args.index("--properties-file") + 1]
    mode = os.stat(path).st_mode & 0o777
    with open(path) as f:
        conf = dict(line.rstrip("\\n").split("=", 1) for line in f if "=" in line)
with open(os.environ["ORCA_TEST_RECORD"], "w") as f:
    json.dump({{"argv": args, "conf": conf, "conf_mode": mode,
               "env": {{k: os.environ.get(k) for k in ("HADOOP_CONF_DIR", "HADOOP_USER_NAME")}}}}, f)
app = os.environ.get("ORCA_TEST_APP_ID", "{app}")
print("INFO Client: Submitted application " + app, flush=True)
print("INFO Client: \\n\\t client token: N/A\\n\\t tracking URL: http://rm.example:8088/proxy/" + app + "/", flush=True)
sys.exit(int(os.environ.get("ORCA_TEST_SUBMIT_STATUS", "0")))
'''


@pytest.fixture
def spark_home(tmp_path) -> Path:
    """A Spark layout: bin/spark-submit (a recording stand-in) and jars/ with a spark-core jar."""
    home = tmp_path / "spark"
    (home / "bin").mkdir(parents=True)
    (home / "jars").mkdir()
    script = home / "bin" / "spark-submit"
    script.write_text(SPARK_SUBMIT.format(python=sys.executable, app=APP_ID))
    script.chmod(0o755)
    (home / "jars" / "spark-core_2.13-9.9.9.jar").write_bytes(os.urandom(50_000))
    (home / "jars" / "spark-yarn_2.13-9.9.9.jar").write_bytes(os.urandom(20_000))
    return home


def make_archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def small_archive(tmp_path) -> Path:
    return make_archive(tmp_path / "env.tar.gz", {"bin/python": b"#!/bin/sh\n", "lib/data.bin": os.urandom(300_000)})


