"""The "slurm" backend: a Spark standalone master and one worker per node, each an `srun` step."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import tempfile
from dataclasses import replace

from orca_core import spark_security
from orca_core.errors import ConfigError, ConfigTypeError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.ports import is_loopback
from orca_core.spark_cluster import MIN_OVERHEAD, OVERHEAD_FACTOR, SparkClusterBackend
from orca_core.spark_daemons import SparkDaemons, master_command, worker_command
from orca_slurm import slurm
from orca_slurm.allocation import Allocation, RequestedAllocation, current

STARTED_BY_ORCA = "spark://(started by Orca in a Slurm allocation)"
FOUND_AT_START = "(found at start: this host's address on the route to the nodes)"
SECRET_AT_START = "(the context's secret, given at start)"
DAEMON_OPTS = "SPARK_DAEMON_JAVA_OPTS"  # read by spark-class for the master and the workers
REQUEST_OPTIONS = ("partition", "account", "time_limit", "salloc_args")
# salloc flags Orca sets from init_orca_context's arguments
MANAGED_FLAGS = ("--nodes", "-N", "--ntasks", "-n", "--ntasks-per-node", "--cpus-per-task", "-c", "--mem",
                 "--job-name", "-J", "--partition", "-p", "--account", "-A", "--time", "-t")


def step_argv(job: str, node: str, name: str) -> list[str]:
    """The srun prefix of one daemon: a single task on `node`, sharing the node's CPUs with the others,
    with this process's whole environment (whatever SLURM_EXPORT_ENV says)."""
    return ["srun", f"--jobid={job}", "--nodes=1", "--ntasks=1", f"--nodelist={node}", "--overlap",
            f"--job-name={name}", "--kill-on-bad-exit=1", "--export=ALL", "--quiet"]


def route_address(target: str) -> str | None:
    """This host's address on its route to `target` (loopback included; no packet is sent); None if
    `target` does not resolve or has no route."""
    try:
        family, _, _, _, address = socket.getaddrinfo(target, 9, proto=socket.IPPROTO_UDP)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            return probe.getsockname()[0]
    except OSError:
        return None


def this_host(node: str) -> bool:
    """Whether the Slurm node `node` is the machine this program runs on."""
    here = {os.environ.get("SLURMD_NODENAME"), socket.gethostname(), socket.gethostname().split(".")[0]}
    return node in here or is_loopback(node)


def daemon_opts(conf: dict[str, str]) -> str:
    """The daemons' share of the application's conf (authentication, Spark's network settings), as the
    `-Dkey=value` options of SPARK_DAEMON_JAVA_OPTS: no secret among them."""
    shared = {k: v for k, v in spark_security.public(conf).items()
              if k == spark_security.AUTHENTICATE or k.startswith("spark.network.")}
    return " ".join(shlex.quote(f"-D{k}={v}") for k, v in sorted(shared.items()))


class SlurmBackend(SparkClusterBackend):
    """`num_nodes` workers of `cores` cores and `memory` on the nodes of a Slurm allocation.

    Inside an allocation (SLURM_JOB_ID set) Orca uses its nodes; outside one it requests an
    allocation with salloc and releases it at stop. On a shared file system the nodes run this
    interpreter as it is; `ship_python_env=True` ships it instead. The daemons admit only
    applications holding the context's secret, which reaches them in the environment srun passes.
    """

    allocation: Allocation | None = None
    daemons: SparkDaemons | None = None
    workdir: str | None = None

    # planning: pure

    def plan(self) -> LaunchPlan:
        r, o = self.request, self.options
        inside = current()
        given = [name for name in REQUEST_OPTIONS if o.get(name) is not None]
        if inside is not None and given:
            raise ConfigError(
                f"this program runs in Slurm job {inside.job}, whose nodes Orca uses: {', '.join(given)} apply only "
                "to an allocation Orca requests; drop them, or start the program outside an allocation"
            )
        if o["pending_timeout"] <= 0:
            raise ConfigError(f"pending_timeout={o['pending_timeout']!r} must be a positive number of seconds")
        conf = {"spark.cores.max": str(r.resources.cores * r.resources.num_nodes),
                **spark_security.auth_conf(o.get("spark_encryption"))}
        plan = self.spark_plan(STARTED_BY_ORCA, conf)
        job = inside.job if inside else "{job}"
        daemon_env = {DAEMON_OPTS: daemon_opts(plan.spark_conf)}
        if spark_security.authenticated(plan.spark_conf):
            daemon_env[spark_security.DAEMON_ENV] = SECRET_AT_START
        workdir = os.path.join(tempfile.gettempdir(), "orca-slurm-{id}")
        cluster = {
            "job": inside.job if inside else None,
            "node_memory_mb": self.node_memory() >> 20,
            "salloc": None if inside else self.salloc_argv(),
            "driver_host": plan.spark_conf.get("spark.driver.host", FOUND_AT_START),
            "master_step": step_argv(job, "{first node}", "orca-spark-{id}"),
            "master_command": self.master_argv("{first node's address}"),
            "worker_step": step_argv(job, "{node}", "orca-spark-{id}"),
            "worker_command": self.worker_argv("{master URL}", "{node's address}", f"{workdir}/worker-{{i}}"),
            "daemon_env": daemon_env,
        }
        return replace(plan, cluster=cluster)

    def master_argv(self, address: str) -> list[str]:
        """The master on `address`, on ports it picks (its URL is read from its log)."""
        return master_command(address, 0, 0, self.options.get("spark_home"))

    def worker_argv(self, master: str, address: str, work_dir: str) -> list[str]:
        r = self.request
        return worker_command(master, address, r.resources.cores, r.resources.memory >> 20, work_dir, 0,
                              self.options.get("spark_home"))

    def planned_nodes(self) -> list[str] | None:
        """The nodes a context inside an allocation uses, from Slurm's environment; None outside one."""
        inside = current()
        nodes = slurm.expand(inside.nodelist) if inside else None
        return nodes[:self.request.resources.num_nodes] if nodes else None

    def driver_conf(self, master: str) -> dict[str, str]:
        """`driver_host` if given; else this host's address on the route to the first node not this
        host (inside an allocation) or to the controller of slurm.conf; else it is found at start."""
        if self.options.get("driver_host"):
            return super().driver_conf(master)
        nodes = self.planned_nodes()
        if nodes:
            host = route_address(next((n for n in nodes if not this_host(n)), nodes[0]))
        else:
            controller = slurm.controller_host()
            host = route_address(controller) if controller else None
            if host and is_loopback(host):  # the controller runs here: that says nothing of the nodes
                host = None
        return {"spark.driver.host": host} if host else {}

    def check_driver_host(self, master: str, conf: dict[str, str]) -> None:
        """A loopback driver host is refused where the planned nodes are other hosts (else at start)."""
        refuse_loopback(conf.get("spark.driver.host"), list(elsewhere({n: n for n in self.planned_nodes() or []})))

    def node_memory(self) -> int:
        """Memory asked of each node: the executor's, Spark's overhead, and Ray's share with Ray on Spark."""
        memory = self.request.resources.memory
        ray = self.ray_memory() if self.request.init_ray_on_spark else 0
        return memory + max(MIN_OVERHEAD, int(memory * OVERHEAD_FACTOR)) + ray

    def ray_plan(self) -> RayPlan | None:
        """Ray on Spark with its object store defaulting to the memory the allocation reserves for Ray."""
        plan = super().ray_plan()
        if plan is not None and plan.object_store_memory is None:
            plan = replace(plan, object_store_memory=self.ray_memory())
        return plan

    def salloc_argv(self) -> list[str]:
        r, o = self.request, self.options
        extra = o.get("salloc_args") or []
        for arg in extra:
            if not isinstance(arg, str):
                raise ConfigTypeError(f"salloc_args must be a list of strings, got {arg!r} in it")
            flag = arg.split("=", 1)[0]
            if flag in MANAGED_FLAGS:
                raise ConfigError(f"salloc_args may not set {flag}: Orca sets it from num_nodes, cores, memory, "
                                  "partition, account, time_limit or the app name")
        argv = ["salloc", f"--nodes={r.resources.num_nodes}", "--ntasks-per-node=1",
                f"--cpus-per-task={r.resources.cores}", f"--mem={self.node_memory() >> 20}M",
                f"--job-name={r.app_name}"]
        for flag, name in (("--partition", "partition"), ("--account", "account"), ("--time", "time_limit")):
            if o.get(name) is not None:
                argv.append(f"{flag}={o[name]}")
        return [*argv, *extra]

    # starting

    def start(self, plan: LaunchPlan) -> LaunchPlan:
        r, o, cluster = self.request, self.options, plan.cluster
        nodes = r.resources.num_nodes
        driver_host = plan.spark_conf.get("spark.driver.host")
        slurm.check_client()
        slurm.check_controller()
        if cluster["job"] is None:
            partition = slurm.partition(o["partition"])
            partition.check_fits(nodes, r.resources.cores, cluster["node_memory_mb"], o.get("time_limit"))
            refuse_loopback(driver_host, list(elsewhere({n.name: n.address for n in partition.nodes}).values()),
                            f'partition "{partition.name}"')
        self.ship(plan)
        plan = spark_security.with_secret(plan)
        self.workdir = tempfile.mkdtemp(prefix="orca-slurm-")
        name = f"orca-spark-{os.path.basename(self.workdir)}"
        if cluster["job"] is None:
            self.allocation = RequestedAllocation(cluster["salloc"], os.path.join(self.workdir, "salloc.log"),
                                                  o["pending_timeout"], name)
        else:
            self.allocation = current(name)
        self.allocation.acquire()
        job, hosts = self.allocation.job, self.allocation.nodes
        if len(hosts) < nodes:
            raise slurm.SlurmError(f"num_nodes={nodes}, but Slurm job {job} has {len(hosts)} node(s) "
                                   f"({', '.join(hosts)}): ask for at most {len(hosts)}")
        hosts = hosts[:nodes]
        address = slurm.addresses(hosts)
        remote = elsewhere(address)
        refuse_loopback(driver_host, list(remote.values()))
        conf = dict(plan.spark_conf)
        if driver_host is None:  # on the route to a node on another host, if any
            target = next(iter(remote), hosts[0])
            conf["spark.driver.host"] = route_address(address[target])
            if conf["spark.driver.host"] is None:
                raise slurm.SlurmError(f"this host has no route to node {target} ({address[target]}): pass "
                                       "driver_host='<an address of this host the nodes reach>'")
        self.daemons = SparkDaemons(self.workdir, self.daemon_env(plan), grace=10.0, cleanup=self.workdir)
        master = self.daemons.start_master(self.master_argv(address[hosts[0]]), step_argv(job, hosts[0], name))
        self.daemons.start_workers(
            [self.worker_argv(master, address[h], os.path.join(self.workdir, f"worker-{i}")) for i, h in enumerate(hosts)],
            [step_argv(job, h, name) for h in hosts],
        )
        cluster = {**cluster, "job": job, "nodes": hosts, "driver_host": conf["spark.driver.host"]}
        return replace(plan, master=master, spark_conf=conf, cluster=cluster)

    def daemon_env(self, plan: LaunchPlan) -> dict[str, str]:
        """This process's environment (which srun passes to the steps) with the planned daemon settings
        before any SPARK_DAEMON_JAVA_OPTS of yours, and the context's secret."""
        env, planned = dict(os.environ), plan.cluster["daemon_env"]
        env[DAEMON_OPTS] = " ".join(filter(None, (planned[DAEMON_OPTS], env.get(DAEMON_OPTS))))
        if spark_security.DAEMON_ENV in planned:
            env[spark_security.DAEMON_ENV] = plan.spark_conf[spark_security.SECRET]
        return env

    def stop(self) -> None:
        """End the daemons' steps, then release an allocation Orca requested; idempotent."""
        daemons, self.daemons = self.daemons, None
        allocation, self.allocation = self.allocation, None
        workdir, self.workdir = self.workdir, None
        try:
            if daemons is not None:
                daemons.stop()
        finally:
            if allocation is not None:
                allocation.release()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)


def elsewhere(address: dict[str, str]) -> dict[str, str]:
    """Of the nodes `address` names (node: its address), those on other hosts, as "node (address)"."""
    return {node: f"{node} ({addr})" if addr != node else node for node, addr in address.items()
            if not (this_host(node) or is_loopback(addr))}


def refuse_loopback(host: str | None, remote: list[str], where: str = "") -> None:
    """ConfigError if the driver's `host` is a loopback address that the `remote` nodes cannot reach."""
    if host and remote and is_loopback(host):
        listed = ", ".join(remote[:5]) + (", ..." if len(remote) > 5 else "")
        raise ConfigError(
            f"spark.driver.host={host} is a loopback address, but the Spark workers may run on other hosts "
            f"({f'{where}: ' if where else ''}{listed}), which cannot reach it: pass driver_host='<an address of this "
            "host they reach>' (or spark.driver.host in conf)"
        )
