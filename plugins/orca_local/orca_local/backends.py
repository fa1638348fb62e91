"""Backends of the "local" and "spark-submit" modes."""

from __future__ import annotations

import os
import sys

from orca_core import pylib
from orca_core.backend import ClusterBackend
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.resources import parse_memory

LOOPBACK = "127.0.0.1"


class _RayOnThisMachine(ClusterBackend):
    def _shipped(self) -> tuple[str, ...]:
        return tuple(pylib.shipped_path(p) for p in self.request.py_files)

    def _ray_plan(self) -> RayPlan | None:
        r = self.request
        if not (r.init_ray_on_spark or r.runtime == "ray"):
            return None
        size = self.options.get("object_store_memory")
        pythonpath = os.pathsep.join((*self._shipped(), os.environ.get("PYTHONPATH", ""))).rstrip(os.pathsep)
        return RayPlan(
            kind="local",
            num_nodes=1,
            cpus_per_node=r.resources.cores,
            object_store_memory=parse_memory(size, "object_store_memory") if size is not None else None,
            include_dashboard=self.options["include_webui"],
            env={"PYTHONPATH": pythonpath} if pythonpath else {},
        )


class LocalBackend(_RayOnThisMachine):
    """Spark `local[cores]` with `memory` as driver memory; Ray as a local head of `cores` CPUs."""

    def plan(self) -> LaunchPlan:
        r = self.request
        ray = self._ray_plan()
        if r.runtime == "ray":
            return LaunchPlan(cluster_mode="local", master=None, spark=None, ray=ray)
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
        if ray is not None and not master.startswith("local["):
            raise ConfigError(
                f'init_ray_on_spark=True with master "{master}" needs Ray on Spark executors, '
                'which cluster_mode="local" does not start: use cluster_mode="standalone"'
            )
        env = {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": LOOPBACK}
        return LaunchPlan(
            cluster_mode="local", master=master, spark_conf=conf, env=env, py_files=shipped, ray=ray
        )


class SparkSubmitBackend(_RayOnThisMachine):
    """The program was launched by `spark-submit`: attach to the SparkContext it created."""

    def plan(self) -> LaunchPlan:
        if self.request.conf:
            raise ConfigError(
                'cluster_mode="spark-submit" cannot change the Spark conf of a running application: '
                f"pass {', '.join(sorted(self.request.conf))} to spark-submit as --conf instead"
            )
        return LaunchPlan(
            cluster_mode="spark-submit", master=None, spark="attach", py_files=self._shipped(), ray=self._ray_plan()
        )

    def start(self, plan: LaunchPlan) -> None:
        if "PYSPARK_GATEWAY_PORT" not in os.environ:
            raise ConfigError(
                'cluster_mode="spark-submit" attaches to the Spark of a program launched by '
                "spark-submit, and this program was not: run it with spark-submit, or use "
                'cluster_mode="local"'
            )
