"""runtime="ray": a local Ray with no JVM; cluster_mode="ray": attach to an existing cluster."""

import os
import pathlib
import subprocess
import sys

import psutil
import pytest

from orca_core import OrcaContext, init_orca_context, stop_orca_context
from orca_core.errors import NotRunning


@pytest.fixture
def ray_only():
    assert init_orca_context(cluster_mode="local", cores=2, runtime="ray", include_webui=False) is None
    yield OrcaContext.get_ray_context()
    stop_orca_context()


def test_runtime_ray_starts_no_jvm(ray_only):
    import ray

    assert ray_only.resources["CPU"] == 2
    assert ray.get(ray.remote(lambda: 5).remote()) == 5
    names = {p.name() for p in psutil.Process().children(recursive=True)}
    assert "java" not in names and "raylet" in names
    with pytest.raises(NotRunning, match="no Spark"):
        OrcaContext.get_spark_context()


def test_ray_mode_attaches_to_an_existing_cluster(ray_only):
    from orca_core.context import current

    token = current().ray.token
    program = (
        "from orca_core import OrcaContext, init_orca_context, stop_orca_context\n"
        f"assert init_orca_context(cluster_mode='ray', address={ray_only.address!r}) is None\n"
        "import ray\n"
        "print('ATTACHED', OrcaContext.get_ray_context().resources['CPU'], ray.get(ray.remote(lambda: 6).remote()))\n"
        "stop_orca_context()\n"
        "assert not ray.is_initialized()\n"
    )
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ATTACHED 2.0 6" in out.stdout
    import ray

    assert ray.get(ray.remote(lambda: 7).remote()) == 7  # detaching left the cluster running


def test_ray_mode_needs_an_address(monkeypatch):
    from orca_core import OrcaError, plan_orca_context

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(OrcaError, match="address="):
        plan_orca_context(cluster_mode="ray")


def _head_processes():
    return [p for p in psutil.Process().children(recursive=True) if p.name().startswith("python")]


def _head_commands():
    return [" ".join(p.cmdline()) for p in _head_processes()]


def test_the_head_runs_no_client_server_and_no_autoscaler(ray_only):
    commands = _head_commands()
    assert any("dashboard/agent.py" in c or "log_monitor" in c for c in commands), commands
    assert not [c for c in commands if "ray.util.client.server" in c or "autoscaler" in c]


def test_a_client_server_port_in_extra_params_starts_it():
    from orca_core.context import current
    from orca_core.ports import free_ports

    (port,) = free_ports(1, "127.0.0.1")
    init_orca_context(cluster_mode="local", cores=1, runtime="ray", include_webui=False,
                      extra_params={"ray_client_server_port": port})
    try:
        [server] = [p for p in _head_processes()
                    if "ray.util.client.server" in (cmd := " ".join(p.cmdline())) and f"--port={port}" in cmd]
        assert server.environ().get("GRPC_ENABLE_FORK_SUPPORT") == "0"  # it forks a server per client
        program = (  # cluster_mode="ray" attaches through it as a Ray Client
            "from orca_core import OrcaContext, init_orca_context, stop_orca_context\n"
            f"init_orca_context(cluster_mode='ray', address='ray://127.0.0.1:{port}')\n"
            "import ray\n"
            "print('CLIENT', OrcaContext.get_ray_context().resources['CPU'], ray.get(ray.remote(lambda: 8).remote()))\n"
            "stop_orca_context()\n"
        )
        env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": current().ray.token}
        out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:] + _client_server_logs(current().ray.workdir)
        assert "CLIENT 1.0 8" in out.stdout
    finally:
        stop_orca_context()


def test_the_users_grpc_fork_support_setting_reaches_the_head(monkeypatch):
    monkeypatch.setenv("GRPC_ENABLE_FORK_SUPPORT", "1")
    init_orca_context(cluster_mode="local", cores=1, runtime="ray", include_webui=False)
    try:
        [start] = [p for p in _head_processes() if p.cmdline()[1:4] == ["-m", "ray.scripts.scripts", "start"]]
        assert start.environ()["GRPC_ENABLE_FORK_SUPPORT"] == "1"
    finally:
        stop_orca_context()


def _client_server_logs(workdir: str) -> str:
    """The head's Ray client server logs, which its session folder loses at stop."""
    logs = sorted(pathlib.Path(workdir, "ray", "session_latest", "logs").glob("ray_client_server*"))
    return "".join(f"\n--- {path}:\n{path.read_text(errors='replace')[-3000:]}" for path in logs)


def test_a_user_ray_start_hook_still_runs(tmp_path, monkeypatch):
    (tmp_path / "userhook.py").write_text(
        "import os\n"
        "def record(ray_params, head):\n"
        "    open(os.environ['HOOK_OUT'], 'w').write(f'head={head} client={ray_params.ray_client_server_port}')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("RAY_START_HOOK", "userhook.record")
    monkeypatch.setenv("HOOK_OUT", str(tmp_path / "called"))
    init_orca_context(cluster_mode="local", cores=1, runtime="ray", include_webui=False)
    try:
        assert (tmp_path / "called").read_text() == "head=True client=None"
    finally:
        stop_orca_context()
