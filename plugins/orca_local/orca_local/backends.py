"""Backends of the "local" and "spark-submit" modes."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace

from orca_core import pylib, spark_security, spark_submit
from orca_core.backend import WORKER_GPU, ClusterBackend, ray_gpu_conf, ray_on_spark_plan, ray_params
from orca_core.engines.spark import active_spark_context
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.resources import parse_memory
from orca_core.spark_cluster import ShipsPythonEnv

LOOPBACK = "127.0.0.1"
DEFAULT_MEMORY = 2 << 30  # init_orca_context's memory="2g"
LOCAL_CLUSTER = re.compile(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")


class _RayOnThisMachine(ClusterBackend):
    def _shipped(self) -> tuple[str, ...]:
        return tuple(pylib.shipped_path(p) for p in self.request.py_files)

    def _local_ray(self) -> RayPlan | None:
        """A Ray head of `cores` CPUs on this machine, if Ray is asked for."""
        r = self.request
        if not (r.init_ray_on_spark or r.runtime == "ray"):
            return None
        for name in ("num_ray_nodes", "ray_node_cpu_cores", "ray_node_gpus", "ray_node_memory"):
            if self.options.get(name) not in (None, 0):
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


class LocalBackend(_RayOnThisMachine, ShipsPythonEnv):
    """Spark `local[cores]` with `memory` as driver memory; Ray as a local head of `cores` CPUs.

    A `local-cluster[N,C,M]` master in `conf` runs N executor JVMs of C cores and M MiB, and
    Ray on Spark inside them; a shipped environment runs there as on a standalone cluster, from
    this host's cache of unpacked environments. Both authenticate: the driver of `local[...]` with
    a secret Spark makes inside the JVM, a local-cluster's master and workers with a secret of the context.
    """

    def plan(self) -> LaunchPlan:
        r = self.request
        master = r.conf.get("spark.master") or f"local[{r.resources.cores}]"
        cluster = LOCAL_CLUSTER.fullmatch(master) if r.runtime == "spark" else None
        if r.resources.num_nodes not in (1, int(cluster[1]) if cluster else 1):
            raise ConfigError(f"num_nodes={r.resources.num_nodes}, and local mode runs "
                              f"{f'the {cluster[1]} executor(s) of master {master}' if cluster else 'on this machine alone'}"
                              ": drop num_nodes, or set the executors with spark.master local-cluster[N,C,M] in conf")
        if r.runtime == "ray":
            if r.resources.memory != DEFAULT_MEMORY:
                raise ConfigError("memory sizes Spark's driver, and runtime='ray' starts no Spark: drop it (a local Ray "
                                  "takes this machine's memory; object_store_memory sizes its object store)")
            return LaunchPlan(cluster_mode="local", master=None, spark=None, ray=self._local_ray())
        python_env, python_conf, unpacked = self.shipping_conf() if cluster else (None, {}, ())
        if not cluster and self.python_env() is not None:
            raise ConfigError(f"ship_python_env, penv_archive and conda_name ship to a cluster's executors, and "
                              f"master {master} runs Spark's Python workers with this interpreter: drop them, or "
                              "run a local-cluster[N,C,M] master (spark.master in conf)")
        shipped = self._shipped()
        conf = {
            "spark.app.name": r.app_name,
            "spark.driver.memory": r.resources.jvm_memory,
            "spark.driver.host": LOOPBACK,
            "spark.driver.bindAddress": LOOPBACK,
            "spark.pyspark.python": sys.executable,
            **python_conf,
        }
        if unpacked:
            conf["spark.archives"] = ",".join(unpacked)
        if shipped:
            conf["spark.submit.pyFiles"] = ",".join(shipped)
        conf.update(r.conf)
        conf.pop("spark.master", None)
        if master.startswith("local") or self.options.get("spark_encryption"):
            conf = {**spark_security.auth_conf(self.options.get("spark_encryption")), **conf}
        if cluster:
            ray = ray_on_spark_plan(r, executors=int(cluster[1]), executor_cores=int(cluster[2]),
                                    room=int(cluster[3]) << 20, room_name="the executor memory of the master")
            conf.update(ray_gpu_conf(r, WORKER_GPU))
        elif master.startswith("local"):
            ray = self._local_ray()
        elif r.init_ray_on_spark:
            raise ConfigError(
                f"init_ray_on_spark=True with master '{master}' needs Ray on that cluster's executors: "
                'use cluster_mode="standalone" (or yarn-client, k8s-client) instead of "local"'
            )
        else:
            ray = None
        env = {"PYSPARK_PYTHON": conf["spark.pyspark.python"], "SPARK_LOCAL_IP": LOOPBACK}
        return LaunchPlan(
            cluster_mode="local", master=master, spark_conf=conf, env=env, archives=unpacked, py_files=shipped,
            ray=ray, python_env=python_env,
        )

    def nodes_share_files(self) -> bool:
        return True  # a local-cluster's workers run on this machine

    def start(self, plan: LaunchPlan) -> LaunchPlan | None:
        """A local-cluster's environment is packed (if it ships) and its master and workers admit only
        applications with the context's secret."""
        if plan.master and LOCAL_CLUSTER.fullmatch(plan.master):
            self.ship(plan)
            return spark_security.with_secret(plan)
        return None


class SparkSubmitBackend(_RayOnThisMachine):
    """Attach to the SparkContext of this program: the one spark-submit launched it with, or one a
    pyspark shell or notebook kernel started. Orca stops it at the end only if Orca created it.

    Ray, if asked, runs where the application runs: a local head for a `local[...]` master, else
    one Ray node per executor, sized from the application's conf (or `num_ray_nodes` and
    `ray_node_cpu_cores`).
    """

    def plan(self) -> LaunchPlan:
        if self.request.conf:
            raise ConfigError(
                'cluster_mode="spark-submit" cannot change the Spark conf of a running application: '
                f"pass {', '.join(sorted(self.request.conf))} to spark-submit as --conf instead"
            )
        app = application_conf()
        master = app.get("spark.master") if app else None
        host = {"spark.driver.host": app["spark.driver.host"]} if app and "spark.driver.host" in app else {}
        return LaunchPlan(
            cluster_mode="spark-submit", master=master, spark="attach", spark_conf=host, py_files=self._shipped(),
            ray=self._ray(app),
        )

    def _ray(self, app: dict[str, str] | None) -> RayPlan | None:
        r = self.request
        master = (app or {}).get("spark.master", "local")
        if not r.init_ray_on_spark or master.startswith("local[") or master == "local":
            ray = self._local_ray()
            local = re.fullmatch(r"local\[(\d+)(?:,\s*\d+)?\]", master)
            return replace(ray, cpus_per_node=int(local[1])) if ray and local else ray
        executors, cores = _executors(app, self.options)
        cluster = LOCAL_CLUSTER.fullmatch(master)
        room = int(cluster[3]) << 20 if cluster else parse_memory(app.get("spark.executor.memory", "1g"),
                                                                   "spark.executor.memory")
        return ray_on_spark_plan(r, executors=executors, executor_cores=cores, room=room,
                                 room_name="the executor memory of the application")

    def start(self, plan: LaunchPlan) -> None:
        if not (spark_submit.launched_by_spark_submit() or active_spark_context() is not None):
            raise ConfigError(
                'cluster_mode="spark-submit" attaches to the SparkContext of this program, and it has none: '
                "run it with spark-submit, create the SparkContext first (pyspark shell, notebook), or use "
                'cluster_mode="local"'
            )


def application_conf() -> dict[str, str] | None:
    """The Spark conf of this program's application (running, or set up by spark-submit), or None.

    Creates no SparkContext: under spark-submit it reads the conf spark-submit gave the JVM."""
    sc = active_spark_context()
    if sc is not None:
        return dict(sc.getConf().getAll())
    if not spark_submit.launched_by_spark_submit():
        return None
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to spark-submit's JVM
    return dict(SparkConf().getAll())


def _executors(conf: dict[str, str], options: dict) -> tuple[int, int]:
    """Executors of the application and cores of each: from its master or conf, else from the options."""
    cluster = LOCAL_CLUSTER.fullmatch(conf.get("spark.master", ""))
    if cluster:
        return int(cluster[1]), int(cluster[2])
    cores = int(conf.get("spark.executor.cores", 0)) or options.get("ray_node_cpu_cores")
    if not cores:
        raise ConfigError(
            "this application's conf sets no spark.executor.cores, so Orca cannot size Ray nodes: pass "
            "ray_node_cpu_cores=N (and num_ray_nodes=N), or spark-submit --executor-cores N"
        )
    executors = int(conf.get("spark.executor.instances", 0)) or int(conf.get("spark.cores.max", 0)) // cores \
        or options.get("num_ray_nodes")
    if not executors:
        raise ConfigError(
            "this application's conf sets no spark.executor.instances (nor spark.cores.max), so Orca cannot "
            "tell how many Ray nodes to start: pass num_ray_nodes=N, or spark-submit --num-executors N"
        )
    return executors, cores
