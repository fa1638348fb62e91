"""A packed venv really runs PySpark workers: Spark unpacks it with `spark.archives=<archive>#python_env`.

The shipped venv carries pyspark without its jars: the cluster's Spark provides them, and its
workers import pyspark from Spark's own `python/lib/pyspark.zip`, which Spark puts first on their
PYTHONPATH. Everything else comes from the shipped environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile

import pyspark
import pytest

from orca_core.shipping import pack_environment

DRIVER = """
import json, os, sys
from pyspark.sql import SparkSession

archive = sys.argv[1]
os.environ["PYSPARK_PYTHON"] = "./python_env/bin/python"
spark = (SparkSession.builder.master("local-cluster[1,1,1024]")
         .config("spark.archives", archive + "#python_env")
         .config("spark.pyspark.python", "./python_env/bin/python")
         .config("spark.ui.enabled", "false")
         .getOrCreate())
try:
    def where(_):
        import os, sys
        import pyspark, termcolor
        yield {"prefix": sys.prefix, "cwd": os.getcwd(), "pyspark": pyspark.__file__,
               "termcolor": termcolor.__file__, "jars": os.path.exists(os.path.join(sys.prefix,
               "lib", "python3.11", "site-packages", "pyspark", "jars"))}
    result = spark.sparkContext.parallelize([0], 1).mapPartitions(where).collect()[0]
    result["app"] = spark.sparkContext.applicationId
finally:
    spark.stop()
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def spark_venv(tmp_path_factory):
    """A small venv with this pyspark (installed by uv, shared from its cache) and termcolor, absent here."""
    venv = tmp_path_factory.mktemp("spark") / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    uv = shutil.which("uv") or os.path.join(sys.prefix, "bin", "uv")
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    f"pyspark=={pyspark.__version__}", "termcolor"], check=True)
    return venv


def test_spark_workers_run_the_shipped_env_without_its_spark_jars(spark_venv, tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "cache"))
    packed = pack_environment(prefix=spark_venv, progress=False)
    jars = spark_venv / "lib" / "python3.11" / "site-packages" / "pyspark" / "jars"
    jar_bytes = sum(p.stat().st_size for p in jars.iterdir())
    assert packed.size < jar_bytes / 5, "the archive leaves the Spark jars out"
    with tarfile.open(packed.path) as tar:
        assert not [n for n in tar.getnames() if "pyspark/jars" in n]
    out = subprocess.run([sys.executable, "-c", DRIVER, packed.path], capture_output=True, text=True, timeout=480)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    try:
        env = os.path.join(result["cwd"], "python_env")
        assert result["prefix"] == env
        assert result["termcolor"].startswith(env + "/"), "a package only the shipped env has"
        assert result["jars"] is False
        assert result["pyspark"].startswith(env + "/") or "/python/lib/pyspark.zip/" in result["pyspark"]
    finally:
        app_dir = os.path.dirname(result["cwd"])
        if os.path.basename(app_dir) == result["app"]:
            shutil.rmtree(app_dir, ignore_errors=True)
