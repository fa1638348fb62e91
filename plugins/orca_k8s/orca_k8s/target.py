"""Where the pods go: the API server, namespace and credentials, read from kubeconfig or the pod.

Resolving a target reads files only (kubeconfig, the service account of a pod); it never calls
the API server, so `orca plan` works offline.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from orca_core.errors import ConfigError

SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Target:
    """The API server (`url`), the namespace, and how to authenticate to it."""

    url: str
    namespace: str
    kubeconfig: tuple[str, ...] = ()
    context: str | None = None
    in_cluster: bool = False

    @property
    def master(self) -> str:
        return f"k8s://{self.url}"

    def api_client(self):
        """A `kubernetes.client.ApiClient` for this target: no retries, so a dead server fails fast."""
        from kubernetes import client, config

        cfg = client.Configuration()
        if self.kubeconfig:
            config.load_kube_config(
                config_file=os.pathsep.join(self.kubeconfig), context=self.context,
                client_configuration=cfg, persist_config=False,
            )
        else:
            config.load_incluster_config(client_configuration=cfg)
        cfg.host = self.url
        cfg.retries = 0
        return client.ApiClient(cfg)


def _load_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read kubeconfig {path}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"kubeconfig {path} is not a kubeconfig mapping")
    return data


def _merged(paths: tuple[str, ...]) -> dict:
    """kubectl's merge of several kubeconfig files: the first file to define a name wins."""
    merged: dict = {"clusters": {}, "contexts": {}, "current-context": None}
    for path in paths:
        data = _load_yaml(path)
        merged["current-context"] = merged["current-context"] or data.get("current-context")
        for kind in ("clusters", "contexts"):
            for entry in data.get(kind) or ():
                merged[kind].setdefault(entry.get("name"), entry.get(kind[:-1]) or {})
    return merged


def kubeconfig_paths(option: str | None, environ) -> tuple[str, ...]:
    if option:
        if not os.path.exists(option):
            raise ConfigError(f"kubeconfig={option!r} does not exist: pass the path of a kubeconfig file")
        return (option,)
    if environ.get("KUBECONFIG"):
        return tuple(p for p in environ["KUBECONFIG"].split(os.pathsep) if p and os.path.exists(p))
    default = os.path.join(os.path.expanduser("~"), ".kube", "config")
    return (default,) if os.path.exists(default) else ()


def in_pod(environ) -> bool:
    """True when this process runs in a Kubernetes pod (the kubelet sets KUBERNETES_SERVICE_HOST in every pod)."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST"))


def _mounted_account(sa_dir: str) -> bool:
    return os.path.exists(os.path.join(sa_dir, "token")) and os.path.exists(os.path.join(sa_dir, "namespace"))


def resolve(options: dict, environ=os.environ, sa_dir: str = SERVICEACCOUNT_DIR) -> Target:
    """The target named by the options, else the kubeconfig context, else the pod's own cluster."""
    master = options.get("master")
    namespace = options.get("namespace")
    paths = kubeconfig_paths(options.get("kubeconfig"), environ)
    if paths:
        config = _merged(paths)
        name = options.get("context") or config["current-context"]
        if name not in config["contexts"]:
            known = ", ".join(sorted(n for n in config["contexts"] if n)) or "none"
            raise ConfigError(
                f"kubeconfig context {name!r} is not in {', '.join(paths)} (contexts: {known}): pass "
                "context=NAME or run `kubectl config use-context NAME`"
            )
        context = config["contexts"][name]
        server = (config["clusters"].get(context.get("cluster")) or {}).get("server")
        url = _url(master) if master else server
        if not url:
            raise ConfigError(f"kubeconfig context {name!r} names no cluster server: pass master='k8s://https://...'")
        return Target(url, namespace or context.get("namespace") or "default", paths, name)
    if in_pod(environ) and _mounted_account(sa_dir):
        host, port = environ["KUBERNETES_SERVICE_HOST"], environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        with open(os.path.join(sa_dir, "namespace"), encoding="utf-8") as f:
            own = f.read().strip()
        return Target(_url(master) if master else f"https://{host}:{port}", namespace or own or "default",
                      in_cluster=True)
    raise ConfigError(
        "no Kubernetes cluster to talk to: no kubeconfig ($KUBECONFIG, ~/.kube/config) and no service account "
        f"mounted at {sa_dir}; "
        "pass kubeconfig='/path/to/config' or run `kubectl config view` to check your setup"
    )


def _url(master: str) -> str:
    url = master[len("k8s://"):] if master.startswith("k8s://") else master
    if not url.startswith(("http://", "https://")):
        url = f"https://{url}"
    return url.rstrip("/")


@dataclass(frozen=True)
class DriverPod:
    """This process's own pod, when the driver runs in one."""

    name: str
    ip: str


def driver_pod(environ=os.environ) -> DriverPod | None:
    """The pod this process runs in (name from $HOSTNAME, IP from $POD_IP or the hostname), or None."""
    if not in_pod(environ):
        return None
    name = environ.get("HOSTNAME") or socket.gethostname()
    ip = environ.get("POD_IP")
    if not ip:
        try:
            ip = socket.gethostbyname(name)
        except OSError as error:
            raise ConfigError(
                f"cannot find the IP of this pod {name!r} ({error}): set POD_IP from the downward API "
                "(env: POD_IP valueFrom fieldRef status.podIP)"
            ) from error
    return DriverPod(name, ip)

