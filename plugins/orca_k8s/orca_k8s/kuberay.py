"""runtime="ray" on Kubernetes: a KubeRay `RayCluster` (ray.io/v1) owned and leased like executors."""

from __future__ import annotations

import logging
import secrets
import time
from importlib import metadata

from orca_k8s.kube import Kube, KubernetesError, status
from orca_k8s.labels import APP, ROLE

log = logging.getLogger("orca.k8s")
GROUP, VERSION, PLURAL = "ray.io", "v1", "rayclusters"
CLIENT_PORT = 10001


def _ray_version() -> str | None:
    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:
        return None


def _pod(spec, role: str, app_id: str, token_secret: str, cores: int, memory: int) -> dict:
    resources = {"cpu": str(cores), "memory": str(memory)}
    container = {
        "name": f"ray-{role}",
        "image": spec.image,
        "resources": {"requests": resources, "limits": resources},
        "env": [
            {"name": "RAY_AUTH_MODE", "value": "token"},
            {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "token"}}},
        ],
    }
    if spec.pull_policy:
        container["imagePullPolicy"] = spec.pull_policy
    if spec.volumes:
        container["volumeMounts"] = [{"name": f"pvc-{i}", "mountPath": path}
                                     for i, path in enumerate(spec.volumes.values())]
    pod = {"containers": [container]}
    if spec.service_account:
        pod["serviceAccountName"] = spec.service_account
    if spec.pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in spec.pull_secrets]
    if spec.volumes:
        pod["volumes"] = [{"name": f"pvc-{i}", "persistentVolumeClaim": {"claimName": claim}}
                          for i, claim in enumerate(spec.volumes)]
    return {"metadata": {"labels": {APP: app_id, ROLE: f"ray-{role}"}}, "spec": pod}


def manifest(spec, app_id: str, namespace: str, owner_ref: dict | None, token_secret: str,
             cores: int, memory: int, num_nodes: int) -> dict:
    """A RayCluster of `num_nodes` nodes (a head and num_nodes-1 workers) of `cores` CPUs and `memory` bytes."""
    params = {"num-cpus": str(cores)}
    workers = num_nodes - 1
    meta = {"name": app_id, "namespace": namespace, "labels": {APP: app_id, ROLE: "raycluster"}}
    if owner_ref:
        meta["ownerReferences"] = [owner_ref]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RayCluster", "metadata": meta,
        "spec": {
            "headGroupSpec": {"rayStartParams": {**params, "dashboard-host": "0.0.0.0"},
                              "template": _pod(spec, "head", app_id, token_secret, cores, memory)},
            "workerGroupSpecs": [{
                "groupName": "workers", "replicas": workers, "minReplicas": workers, "maxReplicas": workers,
                "rayStartParams": params, "template": _pod(spec, "worker", app_id, token_secret, cores, memory),
            }] if workers else [],
        },
    }
    version = _ray_version()
    if version:
        body["spec"]["rayVersion"] = version
    return body


def address(app_id: str, namespace: str) -> str:
    """The Ray client address of the cluster's head service, as KubeRay names it."""
    return f"ray://{app_id}-head-svc.{namespace}.svc:{CLIENT_PORT}"


def create(kube: Kube, body: dict) -> None:
    from kubernetes.client.exceptions import ApiException

    ns = body["metadata"]["namespace"]
    try:
        kube.call(kube.custom.create_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, body)
    except ApiException as error:
        if status(error) == 404:
            raise KubernetesError(
                f"the cluster {kube.target.url} has no RayCluster resource (ray.io/v1): install the KubeRay "
                "operator (`helm install kuberay-operator kuberay/kuberay-operator`) or use runtime='spark' "
                "with init_ray_on_spark=True"
            ) from error
        raise


def ready_nodes(cluster: dict) -> int:
    """Nodes KubeRay reports ready: the head once the cluster is ready, plus ready workers."""
    st = cluster.get("status") or {}
    head = 1 if st.get("state") == "ready" or _condition(st, "HeadPodReady") else 0
    return head + int(st.get("readyWorkerReplicas") or 0)


def _condition(st: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in st.get("conditions") or ())


def wait_ready(kube: Kube, namespace: str, name: str, num_nodes: int, timeout: float, progress=log.info) -> dict:
    """Wait (watching the RayCluster) until `num_nodes` are ready; report progress; time out with its status."""
    from kubernetes import watch
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    deadline = time.monotonic() + timeout
    seen = -1
    cluster: dict = {}
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            st = cluster.get("status") or {}
            raise KubernetesError(
                f"RayCluster {name} in {namespace} was not ready after {timeout:.0f}s: {seen}/{num_nodes} nodes "
                f"ready, status {st}; check `kubectl describe raycluster {name} -n {namespace}` and its pods"
            )
        w = watch.Watch()
        try:
            for event in w.stream(kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                  field_selector=f"metadata.name={name}",
                                  timeout_seconds=max(1, int(min(remaining, 30))),
                                  _request_timeout=(3.0, min(remaining, 30) + 1)):
                cluster = event["object"]
                if cluster.get("metadata", {}).get("name") != name:
                    continue
                if event["type"] == "DELETED":
                    raise KubernetesError(f"RayCluster {name} in {namespace} was deleted while starting")
                ready = ready_nodes(cluster)
                if ready != seen:
                    seen = ready
                    progress(f"Ray nodes ready {min(ready, num_nodes)}/{num_nodes}")
                if ready >= num_nodes:
                    return cluster
                if time.monotonic() > deadline:
                    break
        except (ReadTimeoutError, ProtocolError) as error:  # a watch that ended early: watch again
            log.debug("watch of RayCluster %s interrupted: %s", name, error)
        finally:
            w.stop()


def delete_all(kube: Kube, namespace: str, label_selector: str) -> None:
    """Delete the RayClusters with a label; a cluster without KubeRay has none."""
    from kubernetes.client.exceptions import ApiException

    try:
        found = kube.call(kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                          label_selector=label_selector)
    except ApiException as error:
        if status(error) in (403, 404):  # no KubeRay, or not allowed to have made a RayCluster
            return
        raise
    for item in found.get("items", []):
        try:
            kube.call(kube.custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                      item["metadata"]["name"], body={"propagationPolicy": "Background"})
        except ApiException as error:
            if status(error) != 404:
                raise


def start(kube: Kube, spec, app_id: str, namespace: str, owner_ref: dict, cores: int, memory: int,
          num_nodes: int, timeout: float) -> str:
    """Create the RayCluster of `app_id` with a fresh token (in a Secret it owns) and wait for its
    `num_nodes` workers; the token."""
    token = secrets.token_hex(32)
    token_secret = f"{app_id}-ray-token"
    kube.call(kube.core.create_namespaced_secret, namespace, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": token_secret, "labels": {APP: app_id, ROLE: "ray-token"}, "ownerReferences": [owner_ref]},
        "stringData": {"token": token},
    })
    create(kube, manifest(spec, app_id, namespace, owner_ref, token_secret, cores, memory, num_nodes))
    wait_ready(kube, namespace, app_id, num_nodes, timeout)
    return token
