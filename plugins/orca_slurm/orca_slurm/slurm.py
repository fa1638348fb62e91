"""Slurm's client commands: is there a Slurm, which nodes a partition has, where a node lives."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from orca_core.errors import OrcaError

CLIENTS = ("salloc", "srun", "sinfo", "scontrol", "scancel", "squeue")
DEFAULT_CONF = "/etc/slurm/slurm.conf"  # where Slurm's commands read slurm.conf without SLURM_CONF
TIMEOUT = 20.0  # seconds a query may take; Slurm's own MessageTimeout defaults to 10


class SlurmError(OrcaError, RuntimeError):
    """Slurm is missing, unreachable, or cannot give what was asked."""


def run(*argv: str, timeout: float = TIMEOUT) -> str:
    """The output of a Slurm command; SlurmError with its error output if it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise SlurmError(f"`{' '.join(argv)}` did not answer within {timeout:.0f}s: is slurmctld reachable?") from error
    if done.returncode != 0:
        raise SlurmError(f"`{' '.join(argv)}` failed (exit status {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


def check_client() -> None:
    missing = [c for c in CLIENTS if shutil.which(c) is None]
    if missing:
        raise SlurmError(
            f'cluster_mode="slurm" needs Slurm\'s client commands, but {", ".join(missing)} '
            f"{'is' if len(missing) == 1 else 'are'} not on PATH: load Slurm (e.g. `module load slurm`) or "
            "install its clients (Debian/Ubuntu: `apt-get install slurm-client`)"
        )


def check_controller() -> None:
    """`scontrol ping` reaches a slurmctld that is up."""
    conf = os.environ.get("SLURM_CONF")
    if conf and not os.path.isfile(conf):
        raise SlurmError(f"SLURM_CONF={conf} is not a file: point it at the cluster's slurm.conf, or unset it")
    try:
        said = run("scontrol", "ping")
    except SlurmError as error:
        said = str(error)
    if " is UP" not in said:
        raise SlurmError(f"the Slurm controller is unreachable ({said.strip().splitlines()[0]}): check SLURM_CONF "
                         "and that slurmctld runs (`scontrol ping`)")


def fields(line: str) -> dict[str, str]:
    """`Key=Value Key=Value` as scontrol's one-line output prints records."""
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    address: str = ""  # its NodeAddr


TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def seconds(text: str) -> int | None:
    """A Slurm time ("minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours[:minutes[:seconds]]")
    in seconds; None for UNLIMITED or INFINITE, and for a text that is no such time (salloc then says why)."""
    found = TIME.fullmatch(text.strip())
    if found is None:
        return None
    days, *parts = found.groups()
    parts = [int(p) for p in parts if p is not None]
    if days is not None:
        hours, minutes, secs = (parts + [0, 0])[:3]
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + secs
    if len(parts) == 3:
        hours, minutes, secs = parts
    else:
        hours, (minutes, secs) = 0, (parts + [0])[:2]
    return (hours * 60 + minutes) * 60 + secs


@dataclass(frozen=True)
class Partition:
    name: str
    nodes: tuple[Node, ...]
    max_nodes: int | None  # None: unlimited
    max_time: str = "UNLIMITED"  # as scontrol prints it

    def check_fits(self, num_nodes: int, cores: int, memory_mb: int, time_limit: str | None = None) -> None:
        """SlurmError if no state of the cluster could ever give `num_nodes` nodes of this size for `time_limit`.

        (Slurm's default EnforcePartLimits=NO queues such a job, to stay pending for ever.)"""
        where = f'partition "{self.name}"'
        if self.max_nodes is not None and num_nodes > self.max_nodes:
            raise SlurmError(f"num_nodes={num_nodes}, but {where} allows at most {self.max_nodes} node(s) per job: "
                             "ask for fewer, or pick another partition")
        most, asked = seconds(self.max_time), seconds(time_limit) if time_limit else None
        if most is not None and asked is not None and asked > most:
            raise SlurmError(f"time_limit={time_limit!r}, but {where} allows at most {self.max_time} (MaxTime): "
                             "ask for less, or pick another partition")
        fit = [n for n in self.nodes if n.cpus >= cores and n.memory_mb >= memory_mb]
        if len(fit) < num_nodes:
            listed = ", ".join(f"{n.name} ({n.cpus} CPUs, {n.memory_mb} MB)" for n in self.nodes[:5])
            raise SlurmError(
                f"{where} can never give {num_nodes} node(s) of {cores} core(s) and {memory_mb} MB "
                f"(executor memory plus overhead): {len(fit)} of its {len(self.nodes)} node(s) are that big "
                f"[{listed}{', ...' if len(self.nodes) > 5 else ''}]; ask for less, or pick another partition"
            )


def partition(name: str | None) -> Partition:
    """The partition `name` (default: the cluster's default partition) and its nodes."""
    records = [fields(line) for line in run("scontrol", "show", "partition", "--oneliner").splitlines() if line]
    known = [r.get("PartitionName") for r in records]
    found = [r for r in records if (r.get("PartitionName") == name if name else r.get("Default") == "YES")]
    if not found:
        if name:
            raise SlurmError(f'Slurm has no partition "{name}"; partitions: {", ".join(known) or "none"}')
        raise SlurmError(f"Slurm has no default partition: pass partition= one of {', '.join(known) or 'none'}")
    record = found[0]
    part = record["PartitionName"]
    nodes = []
    for line in run("sinfo", "--noheader", "--Node", "--partition", part, "--format", "%N %c %m %o").splitlines():
        if line.strip():
            node, cpus, memory, address = line.split()
            nodes.append(Node(node, int(cpus.rstrip("+")), int(memory.rstrip("+")), address))
    max_nodes = record.get("MaxNodes", "UNLIMITED")
    return Partition(part, tuple(nodes), None if max_nodes == "UNLIMITED" else int(max_nodes),
                     record.get("MaxTime", "UNLIMITED"))


def controller_host() -> str | None:
    """The first controller's address (else its name) in this machine's slurm.conf (SLURM_CONF, else
    /etc/slurm/slurm.conf); None without a readable one, e.g. on a configless cluster. Asks Slurm nothing."""
    try:
        with open(os.environ.get("SLURM_CONF") or DEFAULT_CONF, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    settings: dict[str, str] = {}
    for line in text.splitlines():
        key, found, value = line.split("#", 1)[0].strip().partition("=")
        if found:
            settings.setdefault(key.strip().lower(), value.strip())
    if settings.get("slurmctldhost"):  # name, or name(address)
        name, _, address = settings["slurmctldhost"].partition("(")
        return address.rstrip(")").strip() or name.strip()
    return settings.get("controladdr") or settings.get("controlmachine") or None


BRACKETS = re.compile(r"([^\[]+)|\[([^\]]*)\]")


def expand(nodelist: str) -> list[str] | None:
    """The node names of a Slurm node list ("rack[1-2]-n[01,03],login"), in Slurm's order, without asking
    Slurm (`scontrol show hostnames` needs a slurm.conf); None if `nodelist` is not of that form."""
    names: list[str] = []
    try:
        for item in re.findall(r"(?:[^,\[]+|\[[^\]]*\])+", nodelist):
            expanded = [""]
            for literal, ranges in BRACKETS.findall(item):
                values = [literal] if literal else [
                    str(i).zfill(len(low)) for low, _, high in (r.partition("-") for r in ranges.split(","))
                    for i in range(int(low), int(high or low) + 1)]
                expanded = [name + value for name in expanded for value in values]
            names += expanded
    except ValueError:
        return None
    return names or None


def hostnames(nodelist: str) -> list[str]:
    """The node names of a Slurm node list such as "node[01-04]"."""
    return run("scontrol", "show", "hostnames", nodelist).split()


def addresses(names: list[str]) -> dict[str, str]:
    """Where each node is reached (its NodeAddr, the name itself if Slurm has none)."""
    out = run("scontrol", "show", "node", "--oneliner", ",".join(names))
    records = [fields(line) for line in out.splitlines() if line.strip()]
    found = {r["NodeName"]: r.get("NodeAddr") or r["NodeName"] for r in records if "NodeName" in r}
    return {name: found.get(name, name) for name in names}


def jobs() -> set[str]:
    """Ids of the jobs Slurm still has (pending, running or completing)."""
    return set(run("squeue", "--noheader", "--format", "%i").split())


def steps(job: str, name: str) -> list[str]:
    """Ids of the steps of `job` called `name` that Slurm still runs."""
    out = run("squeue", "--noheader", "--steps", "--format", "%i %j")
    return [step for step, _, step_name in (line.partition(" ") for line in out.splitlines())
            if step.split(".")[0] == job and step_name == name]
