"""A real single-host Slurm (munged, slurmctld, slurmd) on loopback, shared by every test here."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from orca_core.ports import free_ports, wait_for
from orca_core.supervised import Supervised

NODE = "localhost"
PARTITION = "debug"
SHORT = "short"  # the same node, for jobs of at most one node and one minute
REMOTE = "remote"  # a node on another host (a documentation address, TEST-NET-2), down for good
REMOTE_NODE, REMOTE_ADDRESS = "far", "198.51.100.7"


def machine() -> tuple[int, int]:
    """This machine's CPUs and memory (MiB) as slurmd sees them."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    return int(fields["CPUs"]), int(fields["RealMemory"])


class SingleHostSlurm:
    """slurm.conf, munge key and the three daemons under `root`; `env` points the clients at them."""

    node = NODE

    def __init__(self, root: str):
        self.root = root
        self.conf = os.path.join(root, "slurm.conf")
        self.socket = os.path.join(root, "munge", "munge.socket")
        self.env = {**os.environ, "SLURM_CONF": self.conf}
        self._daemons: list[Supervised] = []
        self.cpus, self.memory_mb = machine()

    def write_conf(self) -> None:
        ctld_port, slurmd_port = free_ports(2)
        dirs = {name: os.path.join(self.root, name) for name in ("state", "spool", "log", "munge")}
        for path in dirs.values():
            os.makedirs(path, mode=0o700, exist_ok=True)
        lines = {
            "ClusterName": "orca-test",
            "SlurmctldHost": f"{NODE}(127.0.0.1)",
            "SlurmctldPort": ctld_port,
            "SlurmdPort": slurmd_port,
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={self.socket}",
            "StateSaveLocation": dirs["state"],
            "SlurmdSpoolDir": dirs["spool"],
            "SlurmctldPidFile": os.path.join(dirs["state"], "slurmctld.pid"),
            "SlurmdPidFile": os.path.join(dirs["spool"], "slurmd.pid"),
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core_Memory",
            "MpiDefault": "none",
            "ReturnToService": 2,
            "KillWait": 5,
            "MinJobAge": 2,
            "SlurmctldTimeout": 30,
            "SlurmdTimeout": 30,
        }
        text = "".join(f"{k}={v}\n" for k, v in lines.items())
        # the remote node first: while "localhost" is the only node read, Slurm finds it under any name
        text += (f"NodeName={REMOTE_NODE} NodeAddr={REMOTE_ADDRESS} CPUs={self.cpus} RealMemory={self.memory_mb} "
                 "State=DOWN\n"
                 f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN\n"
                 f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n"
                 f"PartitionName={SHORT} Nodes={NODE} MaxNodes=1 MaxTime=1 State=UP\n"
                 f"PartitionName={REMOTE} Nodes={REMOTE_NODE} State=UP\n")
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self) -> None:
        self.write_conf()
        munge = os.path.join(self.root, "munge")
        key = os.path.join(munge, "munge.key")
        subprocess.run(["mungekey", "--create", "--keyfile", key], check=True)
        self._start("munged", ["munged", "-F", "-f", f"--key-file={key}", f"--socket={self.socket}",
                               f"--pid-file={munge}/munged.pid", f"--seed-file={munge}/munge.seed"],
                    "Created socket")
        self._start("slurmctld", ["slurmctld", "-D", "-i", "-f", self.conf], "started on cluster")
        wait_for(lambda: self.run("scontrol", "ping").returncode == 0, 60, "slurmctld to answer scontrol ping")
        self._start("slurmd", ["slurmd", "-D", "-N", NODE, "-f", self.conf], "slurmd started on")
        wait_for(self.idle, 60, f"node {NODE} to be idle in sinfo", interval=0.2)

    def _start(self, name: str, argv: list[str], ready: str) -> None:
        daemon = Supervised(name, argv, ready, os.path.join(self.root, "log", f"{name}.log"), self.env, grace=5.0)
        self._daemons.append(daemon)
        daemon.start(timeout=60)

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env, timeout=30)

    def idle(self) -> bool:
        states = self.run("sinfo", "-h", "-N", "-n", NODE, "-o", "%t").stdout.split()  # a line per partition
        return set(states) == {"idle"}

    def largest(self, partition: str = PARTITION) -> tuple[int, int]:
        """The most CPUs and the most memory (MB) of any node of `partition`, as sinfo says."""
        out = self.run("sinfo", "-h", "-N", "-p", partition, "-o", "%c %m").stdout.split()
        return max(int(c.rstrip("+")) for c in out[::2]), max(int(m.rstrip("+")) for m in out[1::2])

    def jobs(self) -> list[str]:
        """Every job slurmctld still knows as pending, running or completing: 'id state'."""
        out = self.run("squeue", "-h", "-o", "%i %T").stdout
        return [line for line in out.splitlines() if line.strip()]

    def steps(self) -> list[str]:
        out = self.run("squeue", "-h", "-s", "-o", "%i").stdout
        return [line for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        daemons, self._daemons = self._daemons, []
        for daemon in reversed(daemons):
            daemon.stop()


@pytest.fixture(scope="session")
def slurm():
    """One real Slurm (munged, slurmctld, slurmd) on loopback for every test here; SLURM_CONF points at it."""
    if shutil.which("slurmctld") is None:
        pytest.fail("Slurm is not installed: `nox -s tests` installs it (apt-get install slurm-wlm munge)")
    root = tempfile.mkdtemp(prefix="orca-slurm-test-")
    cluster = SingleHostSlurm(root)
    saved = os.environ.get("SLURM_CONF")
    try:
        cluster.start()
        os.environ["SLURM_CONF"] = cluster.conf
        yield cluster
    finally:
        cluster.stop()
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def idle_slurm(slurm):
    """The Slurm with no job in it, before and (the test's own assertion aside) after the test."""
    assert slurm.jobs() == []
    yield slurm
    leftover = slurm.jobs()
    for line in leftover:
        slurm.run("scancel", line.split()[0])
    assert leftover == [], f"jobs left in Slurm: {leftover}"
