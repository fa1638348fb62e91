"""Calls to the API server with short timeouts, and errors that say what to fix."""

from __future__ import annotations

from orca_core.errors import LaunchError
from orca_k8s.target import Target

TIMEOUT = (3.0, 10.0)  # connect, read: a server that does not answer fails in seconds


class KubernetesError(LaunchError):
    """The API server refused, or could not be reached for, something Orca needs."""


def status(error: BaseException) -> int | None:
    """The HTTP status of a kubernetes ApiException, else None."""
    from kubernetes.client.exceptions import ApiException

    return error.status if isinstance(error, ApiException) else None


class Kube:
    """The typed APIs Orca uses, bound to one target."""

    def __init__(self, target: Target):
        from kubernetes import client

        self.target = target
        self.api = target.api_client()
        self.core = client.CoreV1Api(self.api)
        self.auth = client.AuthorizationV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.version = client.VersionApi(self.api)

    def call(self, method, *args, **kwargs):
        """`method(*args, **kwargs)` with the short timeout; an unreachable server raises KubernetesError."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", TIMEOUT)
        try:
            return method(*args, **kwargs)
        except ApiException:
            raise
        except (HTTPError, OSError) as error:
            raise KubernetesError(
                f"the Kubernetes API server {self.target.url} does not answer ({_reason(error)}): check that the "
                "cluster is up and reachable from here (`kubectl cluster-info`), or pass master='k8s://https://...'"
            ) from error

    def close(self) -> None:
        self.api.close()


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error)
