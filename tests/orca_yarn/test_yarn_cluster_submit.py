"""yarn-cluster from the submitting side: the program is submitted again through a recording
spark-submit stand-in, and the local process exits with the application's own exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

APP_ID = "application_1700000000000_0042"
PROGRAM = """
import sys
from orca_core import init_orca_context

init_orca_context(cluster_mode="yarn-cluster", cores=1, memory="1g", num_nodes=2, hadoop_conf={conf!r},
                  spark_home={home!r}, penv_archive="hdfs:///shared/envs/team-env.tar.gz", hadoop_user_name="alice",
                  conf={{"spark.app.name": "my app"}})
print("the local process went on after submitting")
"""


@pytest.fixture
def run(tmp_path, hadoop_conf, spark_home):
    script = tmp_path / "my program.py"
    script.write_text(textwrap.dedent(PROGRAM.format(conf=str(hadoop_conf), home=str(spark_home))))
    record = tmp_path / "spark-submit.json"

    def run(*args: str, **env: str):
        done = subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120,
            env={**os.environ, "ORCA_TEST_RECORD": str(record), "ORCA_TEST_APP_ID": APP_ID, **env},
        )
        return done, json.loads(record.read_text()) if record.exists() else None, script

    return run


def test_program_failure_status_comes_back(run, rm, webhdfs):
    rm.add_app(APP_ID, state="FINISHED", final_status="FAILED",
               diagnostics="User application exited with status 3\nat ApplicationMaster.runDriver")
    done, record, script = run("--input", "a path with spaces/x.csv", "", "*")
    assert done.returncode == 3, done.stderr
    assert "went on" not in done.stdout
    argv = record["argv"]
    assert argv[-5:] == [str(script), "--input", "a path with spaces/x.csv", "", "*"]
    assert argv[:2] == ["--properties-file", argv[1]] and not os.path.exists(argv[1])  # removed after the submit
    assert argv[2:7] == ["--load-spark-defaults", "--master", "yarn", "--deploy-mode", "cluster"]
    assert argv[argv.index("--name") + 1] == "my app"
    assert "--conf" not in argv and record["conf_mode"] == 0o600
    confs = record["conf"]
    assert confs["spark.yarn.dist.archives"] == "hdfs:///shared/envs/team-env.tar.gz#python_env"
    assert confs["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./python_env/bin/python"
    assert confs["spark.executor.instances"] == "2"
    assert confs["spark.yarn.archive"].startswith("hdfs://127.0.0.1:8020/user/alice/.orca/spark/spark-9.9.9-")
    assert record["env"]["HADOOP_USER_NAME"] == "alice"
    assert record["env"]["HADOOP_CONF_DIR"].endswith("hadoop-conf")
    assert f"submitted YARN application {APP_ID}" in done.stderr
    assert f"tracking URL: http://rm.example:8088/proxy/{APP_ID}/" in done.stderr
    # Spark's jars were staged before the submit
    assert webhdfs.ops("RENAME")


def test_success_exits_zero(run, rm):
    rm.add_app(APP_ID, state="FINISHED", final_status="SUCCEEDED")
    done, record, _ = run()
    assert done.returncode == 0, done.stderr
    assert record is not None


def test_a_failed_submission_exits_with_spark_submits_status(run, rm):
    done, record, _ = run(ORCA_TEST_SUBMIT_STATUS="7", ORCA_TEST_APP_ID="no application")
    assert done.returncode == 7
    assert not [r for r in rm.requests if "/apps/" in r[1]]


def test_impossible_request_is_refused_before_submitting(run, rm, tmp_path):
    rm.queues["default"] = (512, 4)
    rm.max_memory_mb = 512
    done, record, _ = run()
    assert done.returncode == 1
    assert "YARN would never grant it" in done.stderr
    assert record is None
