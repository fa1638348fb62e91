"""No orphans: executors are owned by a per-application owner, leased by the driver, swept when it dies."""

import json
import os
import subprocess
import sys
import textwrap

from k8s_apiserver import executor_pod
from kubernetes import client
from orca_k8s import owner
from orca_k8s.cli import main as orca_k8s

from orca_core.ports import wait_for


def _template(plan) -> dict:
    with open(plan.spark_conf["spark.kubernetes.executor.podTemplateFile"], encoding="utf-8") as f:
        return json.load(f)


def test_executors_are_owned_and_go_with_the_owner(cluster, make_backend):
    backend, plan = make_backend(num_nodes=2)
    backend.start(plan)
    app = backend.app_id
    cm = cluster.live("configmaps")[app]
    assert cm["metadata"]["labels"] == {owner.APP: app, owner.ROLE: "owner"}
    template = _template(plan)
    assert template["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": app, "uid": cm["metadata"]["uid"]}]
    assert template["metadata"]["labels"][owner.APP] == app
    core = client.CoreV1Api(backend.target.api_client())
    for i in range(2):
        core.create_namespaced_pod("default", executor_pod(template, f"{app}-exec-{i}"))
    assert len(cluster.live("pods")) == 2
    backend.stop()
    assert app not in cluster.live("configmaps")
    wait_for(lambda: not cluster.live("pods"), 10, "the garbage collector to remove the executor pods")
    assert not os.path.exists(plan.spark_conf["spark.kubernetes.executor.podTemplateFile"])
    backend.stop()  # idempotent


def test_the_driver_renews_its_lease(cluster, make_backend):
    backend, plan = make_backend(lease_seconds=1)
    backend.start(plan)
    first = cluster.live("configmaps")[backend.app_id]["metadata"]["annotations"][owner.RENEWED]
    wait_for(lambda: backend.renewer.renewals >= 2, 10, "two lease renewals")
    later = cluster.live("configmaps")[backend.app_id]["metadata"]["annotations"][owner.RENEWED]
    assert later > first
    assert owner.sweep(backend.kube, "default") == []


DRIVER = textwrap.dedent("""
    import json, sys
    from kubernetes import client
    from orca_core.context import build_request

    mode, request = build_request(cluster_mode="k8s-client", container_image="img", lease_seconds=3)
    backend = mode.backend(request)
    plan = backend.plan()
    backend.start(plan)
    with open(plan.spark_conf["spark.kubernetes.executor.podTemplateFile"]) as f:
        template = json.load(f)
    core = client.CoreV1Api(backend.target.api_client())
    for i in range(2):
        meta = {**template["metadata"], "name": f"{backend.app_id}-exec-{i}"}
        core.create_namespaced_pod("default", {"metadata": meta, "spec": {"containers": [
            {"name": "spark-kubernetes-executor", "image": "img"}]}})
    print(backend.app_id, flush=True)
    sys.stdin.read()
""")


def test_kill_9_of_the_driver_leaves_no_pods_after_its_lease(cluster, capsys):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        app = driver.stdout.readline().strip()
        assert app.startswith("orca-"), app
        assert len(cluster.live("pods")) == 2
        assert orca_k8s(["gc"]) == 0
        assert "no expired Orca application in namespace default" in capsys.readouterr().out
        driver.kill()
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    wait_for(lambda: orca_k8s(["gc", "--dry-run"]) == 0 and app in capsys.readouterr().out, 30,
             "the lease of the killed driver to expire")
    assert len(cluster.live("pods")) == 2  # a dry run removes nothing
    result = subprocess.run(["orca", "k8s", "gc", "--all-namespaces"], capture_output=True, text=True, check=True,
                            env={**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]})
    assert f"removed {app} in namespace default" in result.stdout
    wait_for(lambda: not cluster.live("pods"), 10, "the garbage collector to remove the executor pods")
    assert app not in cluster.live("configmaps")


def test_init_sweeps_applications_whose_driver_died(cluster, make_backend):
    dead, dead_plan = make_backend()
    dead.start(dead_plan)
    dead.renewer.stop()  # the driver stops renewing, as if killed
    patch = {"metadata": {"annotations": {owner.RENEWED: "2020-01-01T00:00:00.000000Z"}}}
    dead.kube.core.patch_namespaced_config_map(dead.app_id, "default", patch)
    core = dead.kube.core
    core.create_namespaced_pod("default", executor_pod(_template(dead_plan), f"{dead.app_id}-exec-1"))
    dead.owner = None  # its stop() must not be what removes it
    backend, plan = make_backend()
    backend.start(plan)
    assert dead.app_id not in cluster.live("configmaps")
    assert backend.app_id in cluster.live("configmaps")
    wait_for(lambda: not cluster.live("pods"), 10, "the garbage collector to remove the dead driver's pods")


def test_expiry_rules():
    at = owner.now()
    fresh = {owner.RENEWED: owner._stamp(at), owner.LEASE: "60"}
    assert not owner.expired(fresh, at)
    assert owner.expired({owner.RENEWED: "2020-01-01T00:00:00.000000Z", owner.LEASE: "60"}, at)
    assert owner.expired({}, at)
    assert owner.expired({owner.RENEWED: "yesterday", owner.LEASE: "60"}, at)
