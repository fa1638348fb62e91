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
