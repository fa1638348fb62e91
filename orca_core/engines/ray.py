"""Ray: a local head owned by a supervisor process, and the `RayContext` handle."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field

from orca_core.engines import ray_hook
from orca_core.engines.ray_node import STOP_GRACE
from orca_core.environ import EnvPatch
from orca_core.plan import RayPlan
from orca_core.ports import free_ports
from orca_core.supervised import Supervised, bin_path

READY_TEXT = "Ray runtime started."
START_TIMEOUT = 120.0
VITAL = ("gcs_server", "raylet")  # the head is gone when one of these is
# The head's Ray client server forks a server per client while its gRPC threads run: with gRPC's fork
# handlers on, that child may die before it runs (a client's first connection then fails, about one in
# three here). The user's environment wins.
HEAD_ENV = {"GRPC_ENABLE_FORK_SUPPORT": "0"}


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
    address_info: dict = field(default_factory=dict, repr=False)  # what `ray.init` returned
    _owner: object = field(default=None, repr=False)

    def stop(self) -> None:
        """Disconnect and stop the Ray cluster Orca started (the Spark context keeps running)."""
        if self._owner is not None:
            self._owner.stop()

    def _repr_html_(self) -> str:
        link = f'<a href="{self.dashboard_url}">{self.dashboard_url}</a>' if self.dashboard_url else "off"
        return f"<b>Ray</b> at {self.address}, {self.num_nodes} node(s), dashboard: {link}"


class LocalRay:
    """A Ray head on this machine, under an `orca_core.supervisor` that dies with this process.

    `workdir` (its logs, Ray's temp dir, the TMPDIR of its processes unless the plan's `env` sets one) is
    removed when the head stops, also by its supervisor once this process is gone. When the head dies, a Ray call
    waiting on the dead cluster ends (see `lost`) instead of waiting out its timeout.
    """

    def __init__(self, plan: RayPlan, workdir: str, host: str = "127.0.0.1", num_cpus: int | None = None):
        self.plan = plan
        self.workdir = workdir
        self.host = host
        self.num_cpus = plan.cpus_per_node if num_cpus is None else num_cpus
        self.token = new_token()
        self._ports = free_ports(3, host)
        self.address = f"{host}:{self._ports[0]}"  # known before launch: nodes may wait for it
        self.dashboard_url = None
        self._head: Supervised | None = None
        self._env = EnvPatch()
        self._connection = threading.Lock()  # connect, and disconnect (at stop or when the head dies)

    def launch(self) -> None:
        """Start the head and return once it accepts connections; on failure, raise with its output."""
        gcs, dashboard, agent = self._ports
        cmd = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            f"--node-ip-address={self.host}", f"--port={gcs}",
            f"--num-cpus={self.num_cpus}", "--num-gpus=0",
            "--no-monitor", f"--dashboard-agent-listen-port={agent}",
            "--disable-usage-stats", f"--temp-dir={os.path.join(self.workdir, 'ray')}",
        ]
        if self.plan.include_dashboard:
            cmd += ["--include-dashboard=true", f"--dashboard-host={self.host}", f"--dashboard-port={dashboard}"]
            self.dashboard_url = f"http://{self.host}:{dashboard}"
        else:
            cmd += ["--include-dashboard=false"]
        if self.plan.object_store_memory:
            cmd.append(f"--object-store-memory={self.plan.object_store_memory}")
        cmd += [f"--{k}={v}" for k, v in self.plan.params.items()]
        tmp = os.path.join(self.workdir, "tmp")  # what Ray's processes leave there (the dashboard's forkserver
        os.makedirs(tmp, mode=0o700, exist_ok=True)  # socket folder) goes with the head's folder
        from orca_core.data.creators import LOCK_DIR_ENV, lock_root

        # the data creators' locks stay where this node's Spark tasks take them, whatever the TMPDIR
        env = {**HEAD_ENV, **os.environ, "TMPDIR": tmp, LOCK_DIR_ENV: lock_root(), **self.plan.env,
               **auth_env(self.token)}
        env.update(ray_hook.env(env))
        env["PATH"] = bin_path(env)
        logs = os.path.join(self.workdir, "ray", "session_latest", "logs")
        self._head = Supervised("the Ray head", cmd, READY_TEXT, os.path.join(self.workdir, "ray-head.log"), env,
                                grace=STOP_GRACE, vital={name: os.path.join(logs, f"{name}.out") for name in VITAL},
                                cleanup=self.workdir, on_death=self.lost)
        self._head.start(START_TIMEOUT)

    def connect(self, log_to_driver: bool = True, spark_context=None) -> RayContext:
        """Connect this process to the head as a driver (with the head's token)."""
        import ray

        self._env.set(auth_env(self.token))
        _reload_auth()
        with self._connection:
            info = ray.init(address=self.address, log_to_driver=log_to_driver, configure_logging=False)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return RayContext(
            address=self.address,
            dashboard_url=self.dashboard_url or _dashboard(info),
            num_nodes=len(nodes),
            resources=ray.cluster_resources(),
            address_info=dict(getattr(info, "address_info", None) or {}),  # a ray:// client's context has none
            _owner=self,
        )

    def lost(self) -> None:
        """The head died: a Ray call the main thread waits in ends with KeyboardInterrupt, as Ctrl-C would end it
        (so, uncaught, it fails the program rather than ending it with the SystemExit(0) of a disconnect),
        then this process disconnects, which ends Ray calls waiting in other threads."""
        import _thread

        from orca_core.ports import wait_for

        main = threading.main_thread()
        if main is not threading.current_thread() and _waits_in_ray(main):
            _thread.interrupt_main()
            try:
                wait_for(lambda: not _waits_in_ray(main), 10, "the main thread to leave its Ray call")
            except TimeoutError:
                pass  # the disconnect ends it
        self.disconnect()

    def disconnect(self) -> None:
        """Disconnect this process from Ray (from any thread; idempotent)."""
        import ray

        with self._connection:
            if ray.is_initialized():
                ray.shutdown()

    def stop(self) -> None:
        """Disconnect, have the supervisor kill every process of the head, remove its folder, restore the
        environment."""
        self.disconnect()
        if self._head is not None:
            self._head.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self._env.restore()


def _waits_in_ray(thread: threading.Thread) -> bool:
    """Whether `thread` runs inside Ray's Python API (a `ray.get`, `ray.wait`...)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("ray."):
            return True
        frame = frame.f_back
    return False


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


def private_workdir(prefix: str = "orca-") -> str:
    """A new 0700 temporary directory."""
    return tempfile.mkdtemp(prefix=prefix)


class AttachedRay:
    """An existing Ray cluster (`ray://host:port` or `host:port`): connect, and disconnect at stop.

    `token` is the cluster's auth token when it uses token authentication (the backend that
    knows it passes it; it never appears in the plan).
    """

    def __init__(self, plan: RayPlan, token: str | None = None):
        self.plan = plan
        self.token = token
        self._env = EnvPatch()

    def launch(self) -> None:
        """Nothing to start: the cluster exists."""

    def connect(self, log_to_driver: bool = True, spark_context=None) -> RayContext:
        import ray

        if self.token:
            self._env.set(auth_env(self.token))
            _reload_auth()
        info = ray.init(address=self.plan.address, log_to_driver=log_to_driver, configure_logging=False,
                        runtime_env={"env_vars": self.plan.env} if self.plan.env else None)
        return RayContext(
            address=self.plan.address,
            dashboard_url=_dashboard(info),
            num_nodes=sum(1 for n in ray.nodes() if n.get("Alive")),
            resources=ray.cluster_resources(),
            address_info=dict(getattr(info, "address_info", None) or {}),  # a ray:// client's context has none
            _owner=self,
        )

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self._env.restore()
