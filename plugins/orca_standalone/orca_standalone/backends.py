"""Backends of the "standalone" and "ray" modes."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace

from orca_core import pylib
from orca_core.backend import ClusterBackend, ray_on_spark_plan
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.resources import jvm_size, parse_memory
from orca_standalone.daemons import LOOPBACK, LocalStandaloneCluster

STARTED_BY_ORCA = "spark://(started by Orca)"
MASTER = re.compile(r"spark://[^\s/:]+:\d+(,[^\s/:]+:\d+)*")


class StandaloneBackend(ClusterBackend):
    """`num_nodes` executors of `cores` cores and `memory` on a standalone cluster.

    Without `master`, Orca starts a master and `num_nodes` workers on this machine and stops
    them (and their executors) with the context.
    """

    cluster: LocalStandaloneCluster | None = None

    def plan(self) -> LaunchPlan:
        r, o = self.request, self.options
        master = o["master"]
        if master is not None and not MASTER.fullmatch(master):
            raise ConfigError(f"master={master!r} is not a standalone master URL such as 'spark://host:7077'")
        cores, n = r.resources.cores, r.resources.num_nodes
        shipped = tuple(pylib.shipped_path(p) for p in r.py_files)
        conf = {
            "spark.app.name": r.app_name,
            "spark.executor.cores": str(cores),
            "spark.executor.memory": r.resources.jvm_memory,
            "spark.executor.instances": str(n),
            "spark.cores.max": str(cores * n),
            "spark.pyspark.python": sys.executable,
        }
        if o["driver_memory"] is not None:
            conf["spark.driver.memory"] = jvm_size(parse_memory(o["driver_memory"], "driver_memory"))
        env = {"PYSPARK_PYTHON": sys.executable}
        if master is None:
            conf.update({"spark.driver.host": LOOPBACK, "spark.driver.bindAddress": LOOPBACK})
            env["SPARK_LOCAL_IP"] = LOOPBACK
        if shipped:
            conf["spark.submit.pyFiles"] = ",".join(shipped)
        archives: tuple[str, ...] = ()
        if _ships(o):
            archive = _archive_plan(o)
            archives = (f"{archive}#python_env",)
            conf["spark.archives"] = archives[0]
            conf["spark.pyspark.python"] = "./python_env/bin/python"
            conf["spark.pyspark.driver.python"] = sys.executable
            env["PYSPARK_PYTHON"] = "./python_env/bin/python"
        if r.init_ray_on_spark:
            conf.setdefault("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "1")
        conf.update(r.conf)
        ray = ray_on_spark_plan(r, executors=n, executor_cores=cores)
        return LaunchPlan(
            cluster_mode="standalone", master=master or STARTED_BY_ORCA, spark_conf=conf, env=env,
            archives=archives, py_files=shipped, ray=ray,
        )

    def start(self, plan: LaunchPlan) -> LaunchPlan:
        if _ships(self.options):
            from orca_core.shipping import pack_environment

            packed = pack_environment(**_pack_args(self.options))
            archive = f"{packed.path}#python_env"
            plan = replace(plan, archives=(archive,), spark_conf={**plan.spark_conf, "spark.archives": archive})
        if plan.master != STARTED_BY_ORCA:
            return plan
        r = self.request
        self.cluster = LocalStandaloneCluster(
            self._workdir(), r.resources.num_nodes, r.resources.cores, r.resources.memory >> 20
        )
        master = self.cluster.start()
        return replace(plan, master=master)

    def _workdir(self) -> str:
        import tempfile

        return tempfile.mkdtemp(prefix="orca-standalone-")

    def stop(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.stop()
            import shutil

            shutil.rmtree(os.path.dirname(cluster.workdir), ignore_errors=True)


def _ships(options) -> bool:
    return bool(options["ship_python_env"] or options["penv_archive"] or options["conda_name"])


def _pack_args(options) -> dict:
    return {"penv_archive": options["penv_archive"], "conda_name": options["conda_name"],
            "keep_spark_jars": options["keep_spark_jars"]}


def _archive_plan(options) -> str:
    """Where the packed environment will be, without packing (plans are side-effect free)."""
    from orca_core.shipping import environment_key

    packer, key = environment_key(**_pack_args(options))  # validates penv_archive and conda_name
    if options["penv_archive"]:
        return os.path.abspath(options["penv_archive"])
    return f"(packed by {packer}, key {key})"


class RayClusterBackend(ClusterBackend):
    """Attach to a Ray cluster that runs already; Spark is not started."""

    def plan(self) -> LaunchPlan:
        r = self.request
        address = self.options["address"] or os.environ.get("RAY_ADDRESS")
        if not address:
            raise ConfigError('cluster_mode="ray" needs address="ray://host:10001" (or host:port), or RAY_ADDRESS')
        given = [name for name, value in (("init_ray_on_spark", r.init_ray_on_spark), ("extra_python_lib", r.py_files),
                                          (f"conf ({', '.join(sorted(r.conf))})", r.conf)) if value]
        if given:
            raise ConfigError(f'cluster_mode="ray" attaches to a Ray cluster and starts no Spark: {", ".join(given)} '
                              "do not apply")
        env = self.options["env"] or {}
        return LaunchPlan(cluster_mode="ray", master=None, spark=None,
                          ray=RayPlan(kind="attach", address=address, env=dict(env)))
