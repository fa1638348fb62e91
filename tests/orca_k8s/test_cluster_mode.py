"""k8s-cluster: spark-submit --deploy-mode cluster, then follow the driver pod and exit with its status."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from k8s_apiserver import Controller

from orca_core.errors import LaunchError
from orca_core.ports import wait_for

SPARK_SUBMIT = textwrap.dedent("""\
    #!@PYTHON@
    # Records its argv and conf, then creates the driver pod as spark-submit does (from the driver pod template).
    import json, os, sys
    from kubernetes import client, config

    args = sys.argv[1:]
    with open(args[args.index("--properties-file") + 1]) as f:  # the conf, as spark-submit reads it
        conf = dict(line.rstrip("\\n").split("=", 1) for line in f if "=" in line)
    with open(os.environ["RECORD"], "w") as f:
        json.dump({"argv": args, "conf": conf}, f)
    if os.environ.get("SUBMIT_FAILS"):
        print("Exception in thread main: pods is forbidden", flush=True)
        sys.exit(1)
    with open(conf["spark.kubernetes.driver.podTemplateFile"]) as f:
        meta = json.load(f)["metadata"]
    prefix = "spark.kubernetes.driver.label."
    meta["labels"].update({k[len(prefix):]: v for k, v in conf.items() if k.startswith(prefix)})
    meta["name"] = conf["spark.kubernetes.driver.pod.name"]
    config.load_kube_config()
    client.CoreV1Api().create_namespaced_pod(conf["spark.kubernetes.namespace"], {
        "metadata": meta,
        "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": conf["spark.kubernetes.container.image"]}]}})
""")


@pytest.fixture
def spark_home(tmp_path, monkeypatch):
    home = tmp_path / "spark"
    (home / "bin").mkdir(parents=True)
    script = home / "bin" / "spark-submit"
    script.write_text(SPARK_SUBMIT.replace("@PYTHON@", sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("SPARK_HOME", str(home))
    monkeypatch.setenv("RECORD", str(tmp_path / "argv.json"))
    return tmp_path / "argv.json"


def kubelet(cluster, exit_code: int, log: bytes):
    """Runs driver pods: Running, then terminated with `exit_code`, having written `log`."""
    def react(pod):
        cluster.handler.logs[("default", pod["metadata"]["name"])] = log
        terminated = {"terminated": {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed"}}
        return [
            {"status": {"phase": "Running"}},
            {"status": {"phase": "Failed" if exit_code else "Succeeded",
                        "containerStatuses": [{"name": "spark-kubernetes-driver", "state": terminated,
                                               "ready": False, "restartCount": 0, "image": "img", "imageID": ""}]}},
        ]
    return Controller(cluster, "pods", react).start()


PROGRAM = textwrap.dedent("""\
    from orca_core import init_orca_context
    init_orca_context(cluster_mode="k8s-cluster", container_image="repo/app:1", main_file="/opt/app/job.py",
                      num_nodes=2)
    print("the submitting process must not run the program")
""")


def test_the_process_exits_with_the_driver_status(cluster, spark_home, tmp_path):
    runner = kubelet(cluster, 3, b"hello from the driver pod\n")
    program = tmp_path / "job.py"
    program.write_text(PROGRAM)
    done = subprocess.run([sys.executable, str(program), "--epochs", "2"], capture_output=True, text=True,
                          timeout=120, env={**os.environ})
    assert done.returncode == 3, done.stderr
    assert "hello from the driver pod" in done.stdout
    assert "must not run the program" not in done.stdout
    record = json.loads(spark_home.read_text())
    argv = record["argv"]
    assert record["conf"]["spark.executor.instances"] == "2"
    assert argv[3:7] == ["--master", f"k8s://{cluster.url}", "--deploy-mode", "cluster"]
    assert argv[-3:] == ["local:///opt/app/job.py", "--epochs", "2"]
    assert "--conf" not in argv and not os.path.exists(argv[1])  # the properties file is gone
    (driver,) = runner.seen
    wait_for(lambda: not cluster.live("pods") and not cluster.live("configmaps"), 10,
             "the driver pod and its owner to be removed")
    assert driver.endswith("-driver")


def test_a_successful_driver_exits_zero(cluster, spark_home, make_backend, capsys):
    kubelet(cluster, 0, b"done\n")
    backend, plan = make_backend(cluster_mode="k8s-cluster", main_file="/opt/app/job.py")
    with pytest.raises(SystemExit) as exited:
        backend.start(plan)
    assert exited.value.code == 0
    assert "done" in capsys.readouterr().out
    driver = cluster.live("pods")[f"{backend.app_id}-driver"]
    assert driver["metadata"]["ownerReferences"][0]["name"] == backend.app_id


def test_failed_submission_reports_spark_submit_output(cluster, spark_home, make_backend, monkeypatch):
    monkeypatch.setenv("SUBMIT_FAILS", "1")
    backend, plan = make_backend(cluster_mode="k8s-cluster", main_file="/opt/app/job.py")
    with pytest.raises(LaunchError, match="(?s)spark-submit exited with status 1:.*pods is forbidden"):
        backend.start(plan)


def test_inside_the_driver_pod_the_program_attaches(cluster, make_backend, monkeypatch):
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "41234")
    backend, plan = make_backend(cluster_mode="k8s-cluster")
    assert (plan.spark, plan.submit_argv) == ("attach", None)
    backend.start(plan)
    assert cluster.run(lambda: len(cluster.handler)) == 0
