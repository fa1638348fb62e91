"""Ray: a local head owned by a supervisor process, and the `RayContext` handle."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from orca_core.errors import LaunchError
from orca_core.plan import RayPlan
from orca_core.ports import free_ports

READY_TEXT = "Ray runtime started."
START_TIMEOUT = 120.0


def auth_env(token: str) -> dict[str, str]:
    """Environment that puts a Ray process in token mode with `token` (never ~/.ray/auth_token)."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_AUTH_TOKEN_PATH": ""}


def new_token() -> str:
    return secrets.token_hex(32)


@dataclass
class RayContext:
    """A running Ray cluster this process is connected to."""

    address: str
    dashboard_url: str | None
    num_nodes: int
    resources: dict = field(default_factory=dict)
    _owner: object = field(default=None, repr=False)

    def stop(self) -> None:
        """Disconnect and stop the Ray cluster Orca started (the Spark context keeps running)."""
        if self._owner is not None:
            self._owner.stop()

    def _repr_html_(self) -> str:
        link = f'<a href="{self.dashboard_url}">{self.dashboard_url}</a>' if self.dashboard_url else "off"
        return f"<b>Ray</b> at {self.address}, {self.num_nodes} node(s), dashboard: {link}"


class LocalRay:
    """A Ray head on this machine, under an `orca_core.supervisor` that dies with this process."""

    def __init__(self, plan: RayPlan, workdir: str):
        self.plan = plan
        self.workdir = workdir
        self.token = new_token()
        self.log = os.path.join(workdir, "ray-head.log")
        self.proc: subprocess.Popen | None = None
        self.address = ""
        self.dashboard_url = None

    def launch(self) -> None:
        """Start the head and return once it accepts connections; on failure, raise with its output."""
        gcs, dashboard, client, agent = free_ports(4)
        self.address = f"127.0.0.1:{gcs}"
        cmd = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            "--node-ip-address=127.0.0.1", f"--port={gcs}",
            f"--num-cpus={self.plan.cpus_per_node}", "--num-gpus=0",
            f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
            "--disable-usage-stats", f"--temp-dir={os.path.join(self.workdir, 'ray')}",
        ]
        if self.plan.include_dashboard:
            cmd += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}"]
            self.dashboard_url = f"http://127.0.0.1:{dashboard}"
        else:
            cmd += ["--include-dashboard=false"]
        if self.plan.object_store_memory:
            cmd.append(f"--object-store-memory={self.plan.object_store_memory}")
        cmd += [f"--{k.replace('_', '-')}={v}" for k, v in self.plan.params.items()]
        env = {**os.environ, **self.plan.env, **auth_env(self.token)}
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        supervisor = [sys.executable, "-m", "orca_core.supervisor", "--ready", READY_TEXT, "--log", self.log, "--"]
        self.proc = subprocess.Popen(
            supervisor + cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True
        )
        status = self._read_status()
        if status != "READY":
            self.stop()
            raise LaunchError(f"the local Ray head failed to start ({self.log}):\n{status}")

    def _read_status(self) -> str:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=START_TIMEOUT):
                return f"no answer within {START_TIMEOUT:.0f}s; last output:\n{_tail(self.log)}"
        first = self.proc.stdout.readline().decode(errors="replace").strip()
        if first == "READY":
            return first
        return first + "\n" + self.proc.stdout.read().decode(errors="replace")

    def connect(self, log_to_driver: bool = True) -> RayContext:
        """Connect this process to the head as a driver."""
        import ray

        os.environ.update(auth_env(self.token))
        _reload_auth()
        info = ray.init(address=self.address, log_to_driver=log_to_driver, configure_logging=False)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return RayContext(
            address=self.address,
            dashboard_url=self.dashboard_url or _dashboard(info),
            num_nodes=len(nodes),
            resources=ray.cluster_resources(),
            _owner=self,
        )

    def stop(self) -> None:
        """Disconnect, then have the supervisor kill every process of the head; idempotent."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _reload_auth() -> None:
    """Make this process read the token from the environment again (it caches the first one)."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _dashboard(info) -> str | None:
    url = getattr(info, "dashboard_url", None)
    return f"http://{url}" if url and not url.startswith("http") else url


def _tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def private_workdir(prefix: str = "orca-") -> str:
    """A new 0700 temporary directory."""
    return tempfile.mkdtemp(prefix=prefix)
