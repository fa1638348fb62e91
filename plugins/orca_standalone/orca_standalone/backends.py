"""Backends of the "standalone" and "ray" modes."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import replace

from orca_core import spark_security
from orca_core.backend import ClusterBackend, dynamic_allocation, max_executors
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.spark_cluster import SparkClusterBackend
from orca_standalone.daemons import LOOPBACK, LocalStandaloneCluster

STARTED_BY_ORCA = "spark://(started by Orca)"
MASTER = re.compile(r"spark://[^\s/:]+:\d+(,[^\s/:]+:\d+)*")


class StandaloneBackend(SparkClusterBackend):
    """`num_nodes` executors of `cores` cores and `memory` on a standalone cluster (with dynamic
    allocation, at most `spark.dynamicAllocation.maxExecutors` of them).

    Without `master`, Orca starts a master and `num_nodes` workers on this machine and stops
    them (and their executors) with the context; they admit only applications that hold the
    context's secret (see `orca_core.spark_security`).
    """

    cluster: LocalStandaloneCluster | None = None

    def plan(self) -> LaunchPlan:
        r, master = self.request, self.options["master"]
        if master is not None and not MASTER.fullmatch(master):
            raise ConfigError(f"master={master!r} is not a standalone master URL such as 'spark://host:7077'")
        executors = max_executors(r.conf) if dynamic_allocation(r.conf) else r.resources.num_nodes
        conf = {} if executors is None else {"spark.cores.max": str(r.resources.cores * executors)}
        env = {}
        encrypt = self.options.get("spark_encryption")
        if master is None:
            conf.update({"spark.driver.host": LOOPBACK, "spark.driver.bindAddress": LOOPBACK,
                         **spark_security.auth_conf(encrypt)})
            env["SPARK_LOCAL_IP"] = LOOPBACK
        elif encrypt:
            raise ConfigError("spark_encryption configures the cluster Orca starts, and master= names one it does not: "
                              "set spark.authenticate and spark.network.crypto.enabled as that cluster requires, in conf")
        return self.spark_plan(master or STARTED_BY_ORCA, conf, env)

    def nodes_share_files(self) -> bool:
        return self.options["master"] is None  # the workers Orca starts run on this machine

    def remote_executors(self, master: str) -> bool:
        """The cluster Orca starts, or one on loopback, runs its executors on this host."""
        if master == STARTED_BY_ORCA:
            return False
        from orca_core.ports import is_loopback

        return not is_loopback(self.driver_route(master))

    def start(self, plan: LaunchPlan) -> LaunchPlan | None:
        self.ship(plan)
        if plan.master != STARTED_BY_ORCA:
            return self.serve_env(plan)
        r = self.request
        plan = spark_security.with_secret(plan)
        daemon_conf = {k: v for k, v in plan.spark_conf.items()
                       if k == spark_security.AUTHENTICATE or k.startswith("spark.network.")}
        self.cluster = LocalStandaloneCluster(
            tempfile.mkdtemp(prefix="orca-standalone-"), r.resources.num_nodes, r.resources.cores,
            r.resources.memory >> 20, secret=plan.spark_conf.get(spark_security.SECRET), conf=daemon_conf,
        )
        return replace(plan, master=self.cluster.start())

    def stop(self) -> None:
        super().stop()
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(os.path.dirname(cluster.workdir), ignore_errors=True)


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
