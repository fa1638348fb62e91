"""What a Spark task runs on an executor to start one Ray worker node there.

The task starts the node under `orca_core.supervisor` in its own session, watching the
executor's JVM and the driver's control server, waits until the node has joined the head,
and returns: the task does not hold the executor's slot while Ray runs.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from orca_core.ports import free_ports
from orca_core.supervised import bin_path, supervisor_command, tail

READY_TEXT = "Ray runtime started."
STOP_GRACE = 0.2  # seconds from SIGTERM to SIGKILL: once drivers are gone, raylet and GCS take seconds to honour it
# A node starts one Python worker per CPU with its raylet, while the driver connects, so the first tasks
# find one ready; the node's `env` (the `env` option) may turn it off with "0".
NODE_ENV = {"RAY_enable_worker_prestart": "1"}


@dataclass(frozen=True)
class NodeSpec:
    head: str
    control: str
    env: dict[str, str]
    num_cpus: int
    num_gpus: int = 0
    memory: int | None = None
    object_store_memory: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0


def executor_pid() -> int:
    """The Spark executor JVM this Python worker belongs to (its nearest `java` ancestor)."""
    import psutil

    for proc in psutil.Process().parents():
        if proc.name() == "java":
            return proc.pid
    raise RuntimeError("this Python worker has no Spark executor JVM among its ancestors")


def routable_ip(head: str) -> str:
    """The address of this host on the route to the head."""
    host = head.rpartition(":")[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))
        return probe.getsockname()[0]


def task_gpus(wanted: int) -> list[str]:
    """The addresses of the GPUs Spark assigned to this task (`wanted` of them)."""
    if not wanted:
        return []
    from pyspark import TaskContext

    assigned = TaskContext.get().resources().get("gpu")
    addresses = list(assigned.addresses) if assigned is not None else []
    if len(addresses) != wanted:
        raise RuntimeError(f"Spark assigned GPU(s) {addresses} to this task, not the {wanted} a Ray node asks for: "
                           "give the executors GPU resources (spark.executor.resource.gpu.amount and a discovery script)")
    return addresses


def environment_lock() -> tuple[int, ...]:
    """The shared lock on the shipped environment this worker runs (inherited from the node cache's
    launcher), for the node's supervisor to hold: an environment a Ray node runs is never evicted."""
    from orca_core.shipping.nodecache import LOCK_FD

    try:
        fd = int(os.environ[LOCK_FD])
        held = os.readlink(f"/proc/self/fd/{fd}")
    except (KeyError, ValueError, OSError):
        return ()
    return (fd,) if held.endswith(".lock") else ()


def start(spec: NodeSpec, index: int, hold: bool = False) -> dict:
    """Start Ray node `index` on this executor with the GPUs Spark assigned to this task; return when
    it has joined, or raise with its output. With `hold` the task returns when the node has ended
    instead, and the node ends with the task too (its supervisor watches the task's pipe)."""
    gpus = task_gpus(spec.num_gpus)
    workdir = tempfile.mkdtemp(prefix="orca-rn-")
    log = os.path.join(workdir, "node.log")
    ip = routable_ip(spec.head)
    ray = [
        sys.executable, "-m", "ray.scripts.scripts", "start", f"--address={spec.head}", "--block",
        f"--node-ip-address={ip}", f"--num-cpus={spec.num_cpus}", f"--num-gpus={len(gpus)}",
        "--min-worker-port=0", "--max-worker-port=0", "--disable-usage-stats",
        f"--temp-dir={os.path.join(workdir, 'ray')}", f"--dashboard-agent-listen-port={free_ports(1, ip)[0]}",
    ]
    if spec.memory:
        ray.append(f"--memory={spec.memory}")
    if spec.object_store_memory:
        ray.append(f"--object-store-memory={spec.object_store_memory}")
    ray += [f"--{k.replace('_', '-')}={v}" for k, v in spec.params.items()]
    supervisor = supervisor_command(
        READY_TEXT, log, STOP_GRACE, *(() if hold else ("--no-stdin",)), "--watch-pid", str(executor_pid()),
        "--control", spec.control, "--control-name", f"node-{index}", "--cleanup", workdir,
        f"--vital=raylet={os.path.join(workdir, 'ray', 'session_latest', 'logs', 'raylet.out')}",
    )
    env = {**NODE_ENV, **os.environ, **spec.env}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    env["PATH"] = bin_path(env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [*spec.env.get("PYTHONPATH", "").split(os.pathsep), *sys.path] if p)
    proc = subprocess.Popen(
        supervisor + ray, stdin=subprocess.PIPE if hold else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, start_new_session=True, pass_fds=environment_lock(),
    )
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout=spec.timeout)
    first = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
    if first != "READY":
        output = first + "\n" + ((tail(log) or "(no output)") if not ready else proc.stdout.read().decode(errors="replace"))
        proc.kill()
        raise RuntimeError(f"Ray node {index} on {ip} failed to start:\n{output[-4000:]}")
    proc.stdout.close()
    if hold:
        proc.wait()
    return {"index": index, "ip": ip, "supervisor": proc.pid, "executor": executor_pid(),
            "temp_dir": os.path.join(workdir, "ray"), "gpus": gpus}

