"""The "slurm" backend: a Spark standalone master and one worker per node, each an `srun` step."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace

from orca_core.errors import ConfigError, ConfigTypeError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.spark_cluster import MIN_OVERHEAD, OVERHEAD_FACTOR, SparkClusterBackend
from orca_core.spark_daemons import SparkDaemons, master_command, worker_command
from orca_slurm import slurm
from orca_slurm.allocation import Allocation, RequestedAllocation, current

STARTED_BY_ORCA = "spark://(started by Orca in a Slurm allocation)"
REQUEST_OPTIONS = ("partition", "account", "time_limit", "salloc_args")
# salloc flags Orca sets from init_orca_context's arguments
MANAGED_FLAGS = ("--nodes", "-N", "--ntasks", "-n", "--ntasks-per-node", "--cpus-per-task", "-c", "--mem",
                 "--job-name", "-J", "--partition", "-p", "--account", "-A", "--time", "-t")


def step_argv(job: str, node: str, name: str) -> list[str]:
    """The srun prefix of one daemon: a single task on `node`, sharing the node's CPUs with the others."""
    return ["srun", f"--jobid={job}", "--nodes=1", "--ntasks=1", f"--nodelist={node}", "--overlap",
            f"--job-name={name}", "--kill-on-bad-exit=1", "--quiet"]


class SlurmBackend(SparkClusterBackend):
    """`num_nodes` workers of `cores` cores and `memory` on the nodes of a Slurm allocation.

    Inside an allocation (SLURM_JOB_ID set) Orca uses its nodes; outside one it requests an
    allocation with salloc and releases it at stop. On a shared file system the nodes run this
    interpreter as it is; `ship_python_env=True` ships it instead.
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
        cluster = {
            "job": inside.job if inside else None,
            "node_memory_mb": self.node_memory() >> 20,
            "salloc": None if inside else self.salloc_argv(),
            "master_step": step_argv(inside.job if inside else "{job}", "{first node}", "orca-spark"),
            "worker_step": step_argv(inside.job if inside else "{job}", "{node}", "orca-spark"),
        }
        conf = {"spark.cores.max": str(r.resources.cores * r.resources.num_nodes)}
        return self.spark_plan(STARTED_BY_ORCA, conf, cluster=cluster)

    def driver_conf(self, master: str) -> dict[str, str]:
        """`driver_host` if given; else spark.driver.host is found at start, on the route to the master's node."""
        return super().driver_conf(master) if self.options.get("driver_host") else {}

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
        nodes, cores = r.resources.num_nodes, r.resources.cores
        slurm.check_client()
        slurm.check_controller()
        if cluster["job"] is None:
            slurm.partition(o["partition"]).check_fits(nodes, cores, cluster["node_memory_mb"], o.get("time_limit"))
        self.ship(plan)
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
        spark_home = o.get("spark_home")
        self.daemons = SparkDaemons(self.workdir, dict(os.environ), grace=10.0, cleanup=self.workdir)
        master = self.daemons.start_master(master_command(address[hosts[0]], 0, 0, spark_home),
                                           step_argv(job, hosts[0], name))
        self.daemons.start_workers(
            [worker_command(master, address[h], cores, r.resources.memory >> 20,
                            os.path.join(self.workdir, f"worker-{i}"), 0, spark_home) for i, h in enumerate(hosts)],
            [step_argv(job, h, name) for h in hosts],
        )
        conf = dict(plan.spark_conf)
        if "spark.driver.host" not in conf:  # neither driver_host nor the user's conf named it
            from orca_core.engines.ray_node import routable_ip

            conf["spark.driver.host"] = routable_ip(master.removeprefix("spark://"))
        return replace(plan, master=master, spark_conf=conf, cluster={**cluster, "job": job, "nodes": hosts})

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
