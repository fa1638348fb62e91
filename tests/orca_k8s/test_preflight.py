"""Pre-flight: every problem is a clear OrcaError raised before anything is created."""

import socket

import pytest
from orca_k8s.kube import KubernetesError

from orca_core import init_orca_context, stop_orca_context
from orca_core.errors import OrcaError
from orca_core.ports import free_ports


def test_namespace_must_exist(cluster, make_backend):
    backend, plan = make_backend(namespace="ghost")
    with pytest.raises(KubernetesError, match='namespace "ghost" does not exist.*kubectl create namespace ghost'):
        backend.start(plan)
    assert cluster.live("configmaps", "ghost") == {}


def test_service_account_must_exist(cluster, make_backend):
    backend, plan = make_backend(service_account="spark")
    with pytest.raises(KubernetesError, match='service account "spark" in namespace "default" does not exist'):
        backend.start(plan)
    cluster.run(lambda: cluster.handler.objects.__setitem__(
        ("v1/serviceaccounts", "default", "spark"), {"metadata": {"name": "spark", "namespace": "default"}}))
    backend.start(plan)
    assert backend.app_id in cluster.live("configmaps")


def test_identity_must_be_allowed_to_create_pods(cluster, make_backend):
    cluster.handler.denied.add(("create", "pods"))
    backend, plan = make_backend()
    with pytest.raises(KubernetesError, match='may not create pods in namespace "default".*kubectl create role'):
        backend.start(plan)
    assert cluster.live("configmaps") == {}


def test_forbidden_everywhere(cluster, make_backend):
    cluster.handler.forbidden = True
    backend, plan = make_backend()
    with pytest.raises(KubernetesError, match="refused a SelfSubjectAccessReview.*403"):
        backend.start(plan)


def test_api_server_down_fails_fast(cluster, make_backend, tmp_path, monkeypatch):
    (port,) = free_ports(1)
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig(tmp_path / "down", url=f"http://127.0.0.1:{port}"))
    backend, plan = make_backend()
    with pytest.raises(KubernetesError, match=f"API server http://127.0.0.1:{port} does not answer"):
        backend.start(plan)


def test_api_server_that_never_answers_times_out(cluster, make_backend, tmp_path, monkeypatch):
    with socket.socket() as silent:  # accepts connections into its backlog, never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig(tmp_path / "silent", url=url))
        backend, plan = make_backend()
        with pytest.raises(KubernetesError, match="does not answer.*timed out"):
            backend.start(plan)


def test_init_orca_context_starts_nothing_when_preflight_fails(cluster):
    with pytest.raises(OrcaError, match='namespace "ghost" does not exist'):
        init_orca_context(cluster_mode="k8s-client", container_image="img", namespace="ghost")
    from pyspark import SparkContext

    assert SparkContext._active_spark_context is None
    stop_orca_context()
