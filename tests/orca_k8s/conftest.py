import pytest
from k8s_apiserver import LoopbackCluster


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A loopback API server and a $KUBECONFIG that points at it (namespace "default")."""
    server = LoopbackCluster(namespaces=("default", "team")).start()
    monkeypatch.setenv("KUBECONFIG", server.kubeconfig(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    yield server
    server.stop()


@pytest.fixture
def make_backend():
    """Build the backend and plan init_orca_context(**kwargs) would; stop every one at the end."""
    from orca_core.context import build_request

    made = []

    def make(**kwargs):
        kwargs.setdefault("cluster_mode", "k8s-client")
        kwargs.setdefault("container_image", "repo/spark-py:4")
        mode, request = build_request(**kwargs)
        backend = mode.backend(request)
        made.append(backend)
        return backend, backend.plan()

    yield make
    for backend in made:
        backend.stop()

