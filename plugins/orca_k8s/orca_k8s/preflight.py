"""Checks run before Spark starts: the API server answers, the namespace and service account
exist, and this identity may create what the application needs."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from orca_k8s.kube import Kube, KubernetesError, status

# (verb, resource, API group) an application of each kind needs.
CLIENT_PERMISSIONS = (
    ("create", "pods", ""), ("delete", "pods", ""), ("deletecollection", "pods", ""), ("list", "pods", ""),
    ("watch", "pods", ""),
    ("create", "configmaps", ""), ("list", "configmaps", ""), ("patch", "configmaps", ""),
    ("delete", "configmaps", ""),
)
IN_POD_PERMISSIONS = (("create", "services", ""), ("list", "services", ""), ("delete", "services", ""),
                      ("patch", "pods", ""))
CLUSTER_PERMISSIONS = (*CLIENT_PERMISSIONS, ("create", "services", ""), ("get", "pods/log", ""))
RAY_PERMISSIONS = (("create", "rayclusters", "ray.io"), ("list", "rayclusters", "ray.io"),
                   ("watch", "rayclusters", "ray.io"), ("delete", "rayclusters", "ray.io"),
                   ("create", "secrets", ""), ("list", "secrets", ""), ("delete", "secrets", ""))


def check(kube: Kube, namespace: str, service_account: str | None, permissions) -> None:
    """Raise KubernetesError naming the first thing that would make the application fail."""
    where = f"the Kubernetes API server {kube.target.url}"
    try:
        kube.call(kube.version.get_code)
    except ApiException as error:
        if status(error) == 401:
            raise KubernetesError(
                f"{where} rejected the credentials of {_identity(kube)} (401 Unauthorized): "
                "refresh them (e.g. `kubectl get pods` to log in again) or pick another context"
            ) from error
        if status(error) != 403:  # some clusters hide /version; the checks below still tell
            raise KubernetesError(f"{where} answered /version with {error.status} {error.reason}") from error
    _exists(kube, kube.core.read_namespace, (namespace,), f'namespace "{namespace}"',
            f"create it (`kubectl create namespace {namespace}`) or pass namespace='an existing one'")
    if service_account:
        _exists(kube, kube.core.read_namespaced_service_account, (service_account, namespace),
                f'service account "{service_account}" in namespace "{namespace}"',
                f"create it (`kubectl create serviceaccount {service_account} -n {namespace}`) "
                "or pass service_account='an existing one'")
    denied = [p for p in permissions if not _allowed(kube, namespace, *p)]
    if denied:
        verbs = ",".join(sorted({v for v, _, _ in denied}))
        resources = ",".join(sorted({f"{r}.{g}" if g else r for _, r, g in denied}))
        listed = ", ".join(f"{v} {f'{r}.{g}' if g else r}" for v, r, g in denied)
        raise KubernetesError(
            f'{_identity(kube)} may not {listed} in namespace "{namespace}" (SelfSubjectAccessReview denied): '
            f"ask an admin for a Role, e.g. `kubectl create role orca -n {namespace} --verb={verbs} "
            f"--resource={resources}` and a RoleBinding to you"
        )


def _identity(kube: Kube) -> str:
    return f'kubeconfig context "{kube.target.context}"' if kube.target.context else "this pod's service account"


def _exists(kube: Kube, read, args, what: str, fix: str) -> None:
    try:
        kube.call(read, *args)
    except ApiException as error:
        if status(error) == 404:
            raise KubernetesError(f"{what} does not exist on {kube.target.url}: {fix}") from error
        if status(error) == 401:
            raise KubernetesError(f"{kube.target.url} rejected the credentials of {_identity(kube)}") from error
        if status(error) != 403:  # without read permission, existence cannot be told; the reviews decide
            raise KubernetesError(f"cannot check {what}: {error.status} {error.reason}") from error


def _allowed(kube: Kube, namespace: str, verb: str, resource: str, group: str) -> bool:
    resource, _, sub = resource.partition("/")
    attrs = {"namespace": namespace, "verb": verb, "resource": resource, "group": group}
    if sub:
        attrs["subresource"] = sub
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    try:
        review = kube.call(kube.auth.create_self_subject_access_review, body)
    except ApiException as error:
        raise KubernetesError(
            f"{kube.target.url} refused a SelfSubjectAccessReview from {_identity(kube)} "
            f"({error.status} {error.reason}): the credentials may be invalid or expired"
        ) from error
    return bool(review.status and review.status.allowed)
