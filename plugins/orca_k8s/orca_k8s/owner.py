"""The per-application owner object, its lease, and the sweep of applications whose driver died.

Every object an application creates carries the label `orca.dev/app=<app id>` and, where it can,
an ownerReference to the application's owner ConfigMap. Deleting the owner lets Kubernetes'
garbage collector remove the rest. The driver renews the lease annotation of the owner while it
lives; any later `init_orca_context` or `orca-k8s gc` removes applications whose lease expired.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta, timezone

from orca_k8s import kuberay
from orca_k8s.kube import Kube, status
from orca_k8s.labels import APP, ROLE, selector

log = logging.getLogger("orca.k8s")

RENEWED = "orca.dev/renew-time"
LEASE = "orca.dev/lease-seconds"
HOLDER = "orca.dev/holder"


def now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


class Owner:
    """The owner ConfigMap of one application, created by `create()` and removed by `release()`."""

    def __init__(self, kube: Kube, namespace: str, app_id: str, lease_seconds: int):
        self.kube = kube
        self.namespace = namespace
        self.app_id = app_id
        self.lease_seconds = lease_seconds
        self.uid: str | None = None

    def create(self) -> None:
        body = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": self.app_id, "namespace": self.namespace,
                "labels": {APP: self.app_id, ROLE: "owner"},
                "annotations": {RENEWED: _stamp(now()), LEASE: str(self.lease_seconds),
                                HOLDER: f"{socket.gethostname()}:{os.getpid()}"},
            },
            "data": {"about": "Owner of the pods of an Orca application; delete it to remove them."},
        }
        created = self.kube.call(self.kube.core.create_namespaced_config_map, self.namespace, body)
        self.uid = created.metadata.uid

    def reference(self) -> dict:
        """The ownerReference that makes an object go when the owner goes."""
        return {"apiVersion": "v1", "kind": "ConfigMap", "name": self.app_id, "uid": self.uid}

    def renew(self) -> None:
        patch = {"metadata": {"annotations": {RENEWED: _stamp(now())}}}
        self.kube.call(self.kube.core.patch_namespaced_config_map, self.app_id, self.namespace, patch)

    def release(self) -> None:
        release(self.kube, self.namespace, self.app_id)


def release(kube: Kube, namespace: str, app_id: str) -> None:
    """Delete an application's owner and every object labelled with it (404s are fine).

    Services, Secrets and RayClusters exist only for some applications; an identity that may not
    list them made none, so a 403 there is skipped."""
    from kubernetes.client.exceptions import ApiException

    def quietly(method, *args, ok=(404,), **kwargs):
        try:
            return kube.call(method, *args, **kwargs)
        except ApiException as error:
            if status(error) not in ok:
                raise
            return None

    core = kube.core
    sel = selector(app_id)
    quietly(core.delete_namespaced_config_map, app_id, namespace, body={"propagationPolicy": "Background"})
    quietly(core.delete_collection_namespaced_pod, namespace, label_selector=sel)
    for kind in ("service", "secret"):
        found = quietly(getattr(core, f"list_namespaced_{kind}"), namespace, label_selector=sel, ok=(403, 404))
        for item in found.items if found else ():
            quietly(getattr(core, f"delete_namespaced_{kind}"), item.metadata.name, namespace)
    kuberay.delete_all(kube, namespace, sel)


def expired(annotations: dict | None, at: datetime) -> bool:
    """True when an owner's lease ran out (unreadable leases count as expired)."""
    annotations = annotations or {}
    try:
        renewed = _parse(annotations[RENEWED])
        seconds = int(annotations[LEASE])
    except (KeyError, ValueError):
        return True
    return at > renewed + timedelta(seconds=seconds)


def sweep(kube: Kube, namespace: str | None, dry_run: bool = False) -> list[tuple[str, str]]:
    """Release every application in `namespace` (None: all) whose lease expired; return (namespace, app)."""
    core = kube.core
    sel = f"{ROLE}=owner"
    if namespace is None:
        owners = kube.call(core.list_config_map_for_all_namespaces, label_selector=sel).items
    else:
        owners = kube.call(core.list_namespaced_config_map, namespace, label_selector=sel).items
    at = now()
    gone = []
    for cm in owners:
        if expired(cm.metadata.annotations, at):
            ns, app = cm.metadata.namespace or namespace, cm.metadata.name
            gone.append((ns, app))
            if not dry_run:
                log.info("Orca: removing application %s in namespace %s: its driver stopped renewing", app, ns)
                release(kube, ns, app)
    return gone


class Renewer:
    """A daemon thread that renews the owner's lease every third of its duration until stopped."""

    def __init__(self, owner: Owner):
        self.owner = owner
        self.interval = max(owner.lease_seconds / 3.0, 0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"orca-k8s-lease-{owner.app_id}", daemon=True)
        self.renewals = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.owner.renew()
                self.renewals += 1
            except Exception as error:  # keep trying: one missed renewal does not expire the lease
                log.warning("Orca: could not renew the lease of %s: %s", self.owner.app_id, error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
