"""Starting a YARN backend against ResourceManager and WebHDFS servers on loopback: limits checked
before anything is uploaded, Spark's jars staged once, the application killed if it outlives its driver."""

from __future__ import annotations

import os
import time

import pytest

from orca_core.context import build_request
from orca_core.errors import ConfigError, LaunchError
from orca_core.ports import free_ports

ENV = "hdfs:///shared/envs/team-env.tar.gz"


@pytest.fixture
def base(hadoop_conf, spark_home):
    return {"hadoop_conf": str(hadoop_conf), "penv_archive": ENV, "spark_home": str(spark_home),
            "hadoop_user_name": "alice"}


def backend_and_plan(**kwargs):
    mode, request = build_request(**kwargs)
    backend = mode.backend(request)
    return backend, backend.plan()


def test_start_stages_spark_jars_once(base, rm, webhdfs, spark_home):
    backend, plan = backend_and_plan(cluster_mode="yarn-client", cores=2, memory="2g", **base)
    backend.start(plan)
    remote = plan.spark_conf["spark.yarn.archive"].removeprefix("hdfs://127.0.0.1:8020")
    import zipfile

    with zipfile.ZipFile(webhdfs.local(remote)) as zf:
        assert sorted(zf.namelist()) == sorted(os.listdir(spark_home / "jars"))
    assert oct(os.stat(webhdfs.local(remote)).st_mode & 0o777) == "0o600"
    assert oct(os.stat(webhdfs.local("/user/alice/.orca")).st_mode & 0o777) == "0o700"
    sent = webhdfs.bytes_received
    assert sent > 70_000
    assert ("GET", "/ws/v1/cluster/scheduler") in rm.requests
    again, plan = backend_and_plan(cluster_mode="yarn-client", cores=2, memory="2g", **base)
    again.start(plan)
    assert webhdfs.bytes_received == sent
    backend.stop()
    again.stop()


@pytest.mark.parametrize("kwargs, message", [
    ({"memory": "10g"}, r"executor container needs 11264 MB .* 8192 MB maximum of queue 'default'"),
    ({"memory": "2g", "queue": "small"}, r"executor container needs 2432 MB .* 2048 MB maximum of queue 'small'"),
    # 1g, Spark's 384m overhead, and the 8g asked for Ray
    ({"memory": "1g", "extra_executor_memory_for_ray": "8g"}, r"executor container needs 9600 MB"),
    ({"cores": 8}, r"executor container needs 8 vcores, more than the 4 maximum"),
    ({"driver_memory": "9g", "cluster_mode": "yarn-cluster"}, r"driver \(ApplicationMaster\) container needs 10137 MB"),
    ({"queue": "nightly"}, r"YARN has no queue 'nightly'; its queues: default, small"),
])
def test_impossible_requests_fail_before_any_upload(base, rm, webhdfs, kwargs, message):
    kwargs = {"cluster_mode": "yarn-client", "cores": 2, "memory": "2g", "queue": "default", **kwargs}
    backend, plan = backend_and_plan(**kwargs, **base)
    with pytest.raises(ConfigError, match=message):
        backend.start(plan)
    assert webhdfs.requests == []


def test_cluster_limits_apply_without_a_queue(base, rm, webhdfs):
    rm.max_memory_mb = 4096
    backend, plan = backend_and_plan(cluster_mode="yarn-client", cores=1, memory="4g", **base)
    with pytest.raises(ConfigError, match="4096 MB maximum of the cluster's scheduler"):
        backend.start(plan)


def test_unreachable_resource_manager_fails_within_seconds(base, webhdfs, write_hadoop_conf, tmp_path):
    (port,) = free_ports(1)
    conf = write_hadoop_conf(tmp_path / "dead-rm", f"http://127.0.0.1:{port}", webhdfs.url)
    backend, plan = backend_and_plan(cluster_mode="yarn-client", cores=1, memory="1g", timeout=2,
                                     **{**base, "hadoop_conf": str(conf)})
    started = time.monotonic()
    with pytest.raises(LaunchError, match=rf"cannot reach the YARN ResourceManager \(http://127.0.0.1:{port}"):
        backend.start(plan)
    assert time.monotonic() - started < 10
    assert webhdfs.requests == []


def test_forbidden_hdfs_folder_is_a_clear_error(base, rm, webhdfs):
    webhdfs.denied.add("/user/alice")
    backend, plan = backend_and_plan(cluster_mode="yarn-client", cores=1, memory="1g", **base)
    with pytest.raises(LaunchError, match="HDFS refused .*AccessControlException.*Permission denied: user=alice"):
        backend.start(plan)


def test_stop_kills_an_application_that_outlived_its_driver(base, rm, webhdfs, capsys):
    backend, plan = backend_and_plan(cluster_mode="yarn-client", cores=1, memory="1g", **base)
    backend.start(plan)
    rm.add_app("application_1700000000000_0007", state="RUNNING")
    backend.attach_app("application_1700000000000_0007")
    assert f"application_1700000000000_0007 tracking URL: {rm.url}/proxy/" in capsys.readouterr().err
    backend.stop()
    assert rm.apps["application_1700000000000_0007"]["state"] == "KILLED"
    assert ("PUT", "/ws/v1/cluster/apps/application_1700000000000_0007/state") in rm.requests
    rm.requests.clear()
    backend.stop()
    assert rm.requests == []


def test_stop_leaves_a_finished_application_alone(base, rm, webhdfs):
    backend, plan = backend_and_plan(cluster_mode="yarn-client", cores=1, memory="1g", **base)
    backend.start(plan)
    rm.add_app("application_1700000000000_0008", state="FINISHED", final_status="SUCCEEDED")
    backend.attach_app("application_1700000000000_0008")
    backend.stop()
    assert not [r for r in rm.requests if r[0] == "PUT"]
