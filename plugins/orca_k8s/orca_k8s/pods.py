"""Pods Orca follows: wait for a phase, stream a log, read an exit status, run a probe to its end."""

from __future__ import annotations

import logging
import time

from orca_k8s.kube import Kube, KubernetesError

log = logging.getLogger("orca.k8s")
DONE = ("Succeeded", "Failed")
LOG_SILENCE = 24 * 3600.0  # a driver may print nothing for hours; the follow ends when its container does


def wait_phase(kube: Kube, namespace: str, name: str, phases, timeout: float, progress=log.info):
    """Watch pod `name` until its phase is one of `phases`; return it. Errors if it is deleted or times out."""
    from kubernetes import watch
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    deadline = time.monotonic() + timeout
    phase = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KubernetesError(
                f"pod {name} in {namespace} did not reach {'/'.join(phases)} within {timeout:.0f}s (phase: {phase}); "
                f"see `kubectl describe pod {name} -n {namespace}`"
            )
        w = watch.Watch()
        try:
            for event in w.stream(kube.core.list_namespaced_pod, namespace, field_selector=f"metadata.name={name}",
                                  timeout_seconds=max(1, int(min(remaining, 30))),
                                  _request_timeout=(3.0, min(remaining, 30) + 1)):
                pod = event["object"]
                if pod.metadata.name != name:
                    continue
                if event["type"] == "DELETED":
                    raise KubernetesError(f"pod {name} in {namespace} was deleted (phase {phase})")
                current = pod.status.phase if pod.status else None
                if current != phase:
                    phase = current
                    progress(f"pod {name}: {phase}")
                if phase in phases:
                    return pod
                if time.monotonic() > deadline:
                    break
        except (ReadTimeoutError, ProtocolError) as error:  # a watch that ended early: watch again
            log.debug("watch of pod %s interrupted: %s", name, error)
        finally:
            w.stop()


def stream_log(kube: Kube, namespace: str, name: str, out) -> None:
    """Copy the pod's log to `out` as it is written, until the container ends."""
    response = kube.call(kube.core.read_namespaced_pod_log, name, namespace, follow=True,
                         _preload_content=False, _request_timeout=(3.0, LOG_SILENCE))
    try:
        for chunk in response.stream(4096):
            out.write(chunk.decode(errors="replace"))
            out.flush()
    finally:
        response.release_conn()


def exit_code(pod) -> int:
    """The exit status of the pod's first terminated container (1 for a failed pod without one)."""
    for cs in (pod.status.container_statuses or []) if pod.status else []:
        terminated = cs.state.terminated if cs.state else None
        if terminated is not None:
            return int(terminated.exit_code)
    return 0 if pod.status and pod.status.phase == "Succeeded" else 1


def tail(kube: Kube, namespace: str, name: str, lines: int = 20) -> str:
    try:
        return kube.call(kube.core.read_namespaced_pod_log, name, namespace, tail_lines=lines) or ""
    except Exception as error:  # the log is a courtesy in an error message
        return f"(no log: {error})"


def probe(kube: Kube, namespace: str, spec, name: str, metadata: dict, command: list[str],
          timeout: float) -> tuple[bool, str]:
    """Run `command` in a pod of `spec`'s image to its end: whether it succeeded, and its log's tail.

    `metadata` gives the pod's labels and ownerReferences; a pod that succeeded is deleted.
    """
    container = {"name": "probe", "image": spec.image, "command": command}
    if spec.pull_policy:
        container["imagePullPolicy"] = spec.pull_policy
    pod_spec = {"restartPolicy": "Never", "containers": [container]}
    if spec.service_account:
        pod_spec["serviceAccountName"] = spec.service_account
    if spec.pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in spec.pull_secrets]
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **metadata}, "spec": pod_spec}
    kube.call(kube.core.create_namespaced_pod, namespace, body)
    pod = wait_phase(kube, namespace, name, DONE, timeout)
    if pod.status.phase != "Succeeded":
        return False, tail(kube, namespace, name).strip()
    kube.call(kube.core.delete_namespaced_pod, name, namespace)
    return True, ""


def headless_service(kube: Kube, namespace: str, pod_name: str, name: str, labels: dict,
                     ports: dict[str, int]) -> None:
    """A headless Service `name` for pod `pod_name`, owned by that pod (it goes when the pod goes)."""
    core = kube.core
    me = kube.call(core.patch_namespaced_pod, pod_name, namespace, {"metadata": {"labels": {"orca.dev/driver": name}}})
    ref = {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": me.metadata.uid}
    kube.call(core.create_namespaced_service, namespace, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": labels, "ownerReferences": [ref]},
        "spec": {"clusterIP": "None", "selector": {"orca.dev/driver": name},
                 "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()]},
    })
