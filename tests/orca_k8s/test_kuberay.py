"""runtime="ray": a KubeRay RayCluster sized from cores/memory/num_nodes, waited for, deleted on stop."""

import logging

import pytest
from k8s_apiserver import Controller
from orca_k8s import owner
from orca_k8s.kube import KubernetesError

from orca_core.ports import wait_for


def kuberay_operator(cluster, head_seen=lambda: True):
    """Brings the head up, then (once `head_seen()`) the workers, as the KubeRay operator reports them."""
    def react(rc):
        workers = sum(g["replicas"] for g in rc["spec"]["workerGroupSpecs"])
        yield {"status": {"conditions": [{"type": "HeadPodReady", "status": "True"}], "readyWorkerReplicas": 0}}
        wait_for(head_seen, 30, "Orca to see the head ready")
        yield {"status": {"state": "ready", "readyWorkerReplicas": workers}}
    return Controller(cluster, "rayclusters", react).start()


def test_raycluster_lifecycle(cluster, make_backend, caplog):
    caplog.set_level(logging.INFO, logger="orca.k8s")
    operator = kuberay_operator(
        cluster, head_seen=lambda: "Ray nodes ready 1/3" in [r.getMessage() for r in caplog.records])
    backend, plan = make_backend(runtime="ray", num_nodes=3, cores=2, memory="4g", ray_image="rayproject/ray:2.60.0")
    backend.start(plan)
    app = backend.app_id
    rc = cluster.live("rayclusters")[app]
    owner_uid = cluster.live("configmaps")[app]["metadata"]["uid"]
    assert rc["metadata"]["ownerReferences"][0]["uid"] == owner_uid
    assert rc["metadata"]["labels"][owner.APP] == app
    head = rc["spec"]["headGroupSpec"]
    workers = rc["spec"]["workerGroupSpecs"][0]
    assert head["rayStartParams"]["num-cpus"] == "2"
    assert workers["replicas"] == 2
    container = workers["template"]["spec"]["containers"][0]
    assert container["image"] == "rayproject/ray:2.60.0"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": str(4 << 30)}
    token_env = {e["name"]: e for e in container["env"]}["RAY_AUTH_TOKEN"]
    secret_name = token_env["valueFrom"]["secretKeyRef"]["name"]
    secret = cluster.live("secrets")[secret_name]
    assert secret["stringData"]["token"] == backend.ray_auth_token
    assert secret["metadata"]["ownerReferences"][0]["uid"] == owner_uid
    assert operator.seen == [app]
    messages = [r.getMessage() for r in caplog.records]
    assert "Ray nodes ready 1/3" in messages and messages.index("Ray nodes ready 3/3") > messages.index(
        "Ray nodes ready 1/3")
    backend.stop()
    wait_for(lambda: not cluster.live("rayclusters") and not cluster.live("secrets"), 10,
             "the RayCluster and its token to be deleted")


def test_raycluster_that_never_gets_ready_times_out(cluster, make_backend):
    backend, plan = make_backend(runtime="ray", num_nodes=2, wait_timeout=1)
    with pytest.raises(KubernetesError, match=r"was not ready after 1s: 0/2 nodes ready"):
        backend.start(plan)
    backend.stop()
    assert not cluster.live("rayclusters")


def test_cluster_without_kuberay(cluster, make_backend):
    cluster.handler.kuberay = False
    backend, plan = make_backend(runtime="ray")
    with pytest.raises(KubernetesError, match="no RayCluster resource.*install the KubeRay operator"):
        backend.start(plan)
