"""k8s-client with the driver in a pod: a headless Service owned by the driver pod; executors by label."""

import json

import pytest
from k8s_apiserver import Controller
from kubernetes import client
from orca_k8s import owner

from orca_core.errors import ConfigError


@pytest.fixture
def in_pod(cluster, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("HOSTNAME", "notebook-0")
    monkeypatch.setenv("POD_IP", "10.244.1.7")
    api = client.CoreV1Api(client.ApiClient(client.Configuration(host=cluster.url)))
    return api.create_namespaced_pod("default", {"metadata": {"name": "notebook-0"}, "spec": {"containers": [
        {"name": "notebook", "image": "jupyter"}]}})


def test_driver_service_is_owned_by_the_driver_pod(cluster, in_pod, make_backend):
    backend, plan = make_backend()
    backend.start(plan)
    app = backend.app_id
    service = cluster.live("services")[f"{app}-driver"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "notebook-0", "uid": in_pod.metadata.uid}]
    selector = service["spec"]["selector"]
    assert cluster.live("pods")["notebook-0"]["metadata"]["labels"].items() >= selector.items()
    assert {p["port"] for p in service["spec"]["ports"]} >= {7078, 7079}
    with open(plan.spark_conf["spark.kubernetes.executor.podTemplateFile"]) as f:
        template = json.load(f)
    assert "ownerReferences" not in template["metadata"]  # Spark makes the driver pod own them
    assert template["metadata"]["labels"][owner.APP] == app
    backend.stop()
    assert f"{app}-driver" not in cluster.live("services")
    assert "notebook-0" in cluster.live("pods")  # the driver's own pod stays


def probe_kubelet(cluster, succeed: bool):
    def react(pod):
        if not pod["metadata"]["name"].endswith("-probe"):
            return []
        if not succeed:
            cluster.handler.logs[("default", pod["metadata"]["name"])] = b"ModuleNotFoundError: No module named 'ray'\n"
        return [{"status": {"phase": "Succeeded" if succeed else "Failed"}}]
    return Controller(cluster, "pods", react).start()


def test_ray_on_spark_checks_the_image_has_ray(cluster, make_backend):
    probe_kubelet(cluster, succeed=False)
    backend, plan = make_backend(init_ray_on_spark=True, container_image="repo/spark-only:4")
    with pytest.raises(ConfigError, match="image repo/spark-only:4 cannot import ray.*No module named 'ray'"):
        backend.start(plan)


def test_ray_on_spark_image_with_ray_passes(cluster, make_backend):
    kubelet = probe_kubelet(cluster, succeed=True)
    backend, plan = make_backend(init_ray_on_spark=True)
    backend.start(plan)
    assert kubelet.seen == [f"{backend.app_id}-probe"]
    assert f"{backend.app_id}-probe" not in cluster.live("pods")
