"""Backends of the "local" and "spark-submit" modes."""

from __future__ import annotations

import os
import re
import sys

from orca_core import pylib, spark_security, spark_submit
from orca_core.backend import ClusterBackend, ray_on_spark_plan, ray_params
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan, RayPlan

LOOPBACK = "127.0.0.1"
LOCAL_CLUSTER = re.compile(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")


class _RayOnThisMachine(ClusterBackend):
    def _shipped(self) -> tuple[str, ...]:
        return tuple(pylib.shipped_path(p) for p in self.request.py_files)

    def _local_ray(self) -> RayPlan | None:
        """A Ray head of `cores` CPUs on this machine, if Ray is asked for."""
        r = self.request
        if not (r.init_ray_on_spark or r.runtime == "ray"):
            return None
        for name in ("num_ray_nodes", "ray_node_cpu_cores"):
            if self.options.get(name) is not None:
                raise ConfigError(
                    f"{name} sizes Ray nodes on Spark executors; a local Ray is one node of `cores` CPUs "
                    "(use a local-cluster[...] master in conf for Ray on Spark executors)"
                )
        params, env, size = ray_params(self.options)
        roots = (pylib.import_root(p) for p in r.py_files)
        pythonpath = os.pathsep.join((*roots, os.environ.get("PYTHONPATH", ""))).rstrip(os.pathsep)
        return RayPlan(
            kind="local", num_nodes=1, cpus_per_node=r.resources.cores, object_store_memory=size,
            include_dashboard=self.options["include_webui"], params=params,
            env={**env, "PYTHONPATH": pythonpath} if pythonpath else env,
        )


class LocalBackend(_RayOnThisMachine):
    """Spark `local[cores]` with `memory` as driver memory; Ray as a local head of `cores` CPUs.

    A `local-cluster[N,C,M]` master in `conf` runs N executor JVMs of C cores and M MiB, and
    Ray on Spark inside them; its master and workers authenticate with a secret of the context.
    """

    def plan(self) -> LaunchPlan:
        r = self.request
        if r.runtime == "ray":
            return LaunchPlan(cluster_mode="local", master=None, spark=None, ray=self._local_ray())
        shipped = self._shipped()
        conf = {
            "spark.app.name": r.app_name,
            "spark.driver.memory": r.resources.jvm_memory,
            "spark.driver.host": LOOPBACK,
            "spark.driver.bindAddress": LOOPBACK,
            "spark.pyspark.python": sys.executable,
        }
        if shipped:
            conf["spark.submit.pyFiles"] = ",".join(shipped)
        conf.update(r.conf)
        master = conf.pop("spark.master", None) or f"local[{r.resources.cores}]"
        cluster = LOCAL_CLUSTER.fullmatch(master)
        if cluster or self.options["spark_encryption"]:
            conf = {**spark_security.auth_conf(self.options["spark_encryption"]), **conf}
        if cluster:
            ray = ray_on_spark_plan(r, executors=int(cluster[1]), executor_cores=int(cluster[2]))
        elif master.startswith("local"):
            ray = self._local_ray()
        elif r.init_ray_on_spark:
            raise ConfigError(
                f"init_ray_on_spark=True with master '{master}' needs Ray on that cluster's executors: "
                'use cluster_mode="standalone" (or yarn-client, k8s-client) instead of "local"'
            )
        else:
            ray = None
        env = {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": LOOPBACK}
        return LaunchPlan(
            cluster_mode="local", master=master, spark_conf=conf, env=env, py_files=shipped, ray=ray
        )

    def start(self, plan: LaunchPlan) -> LaunchPlan | None:
        """A local-cluster's master and workers admit only applications with the context's secret."""
        if plan.master and LOCAL_CLUSTER.fullmatch(plan.master):
            return spark_security.with_secret(plan)
        return None


class SparkSubmitBackend(_RayOnThisMachine):
    """The program was launched by `spark-submit`: attach to the SparkContext it created."""

    def plan(self) -> LaunchPlan:
        if self.request.conf:
            raise ConfigError(
                'cluster_mode="spark-submit" cannot change the Spark conf of a running application: '
                f"pass {', '.join(sorted(self.request.conf))} to spark-submit as --conf instead"
            )
        return LaunchPlan(
            cluster_mode="spark-submit", master=None, spark="attach", py_files=self._shipped(), ray=self._local_ray()
        )

    def start(self, plan: LaunchPlan) -> None:
        if not spark_submit.launched_by_spark_submit():
            raise ConfigError(
                'cluster_mode="spark-submit" attaches to the Spark of a program launched by '
                "spark-submit, and this program was not: run it with spark-submit, or use "
                'cluster_mode="local"'
            )
