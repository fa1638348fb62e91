"""Spark: a driver JVM launched and owned by this process, or the one spark-submit started."""

from __future__ import annotations

import subprocess

from orca_core.errors import LaunchError
from orca_core.plan import LaunchPlan


def launch_gateway(plan: LaunchPlan):
    """Start the driver JVM for `plan` (safe to call from a worker thread)."""
    from pyspark import SparkConf
    from pyspark.java_gateway import launch_gateway as pyspark_launch

    conf = SparkConf(loadDefaults=False).setAll(sorted(plan.spark_conf.items()))
    if plan.master:
        conf.setMaster(plan.master)
    try:
        return pyspark_launch(conf, popen_kwargs={"start_new_session": True})
    except Exception as error:
        raise LaunchError(f"the Spark driver JVM failed to start: {error}") from error


class SparkEngine:
    """The SparkContext of a context, and how to stop it and its JVM."""

    def __init__(self, plan: LaunchPlan, gateway=None):
        from pyspark import SparkConf, SparkContext

        self.gateway = gateway
        if plan.spark == "attach":
            self.spark_context = SparkContext.getOrCreate()
            self.owned = False
        else:
            if SparkContext._active_spark_context is not None:
                raise LaunchError(
                    "a SparkContext not started by Orca is running in this process: stop it first, "
                    'or use cluster_mode="spark-submit" to attach to it'
                )
            conf = SparkConf(loadDefaults=False).setAll(sorted(plan.spark_conf.items()))
            if plan.master:
                conf.setMaster(plan.master)
            try:
                self.spark_context = SparkContext(conf=conf, gateway=gateway)
            except BaseException:
                if gateway is not None:
                    stop_gateway(gateway)
                raise
            self.owned = True
        self._session = None

    @property
    def spark_session(self):
        if self._session is None:
            from pyspark.sql import SparkSession

            self._session = SparkSession(self.spark_context)
            SparkSession._instantiatedSession = self._session
            SparkSession._activeSession = self._session
        return self._session

    def stop(self) -> None:
        """Stop the SparkContext and, when this process launched it, the JVM; idempotent."""
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        sc, self.spark_context = self.spark_context, None
        if sc is None or not self.owned:
            return
        if self._session is not None:
            self._session.stop()
        else:
            sc.stop()
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None
        gateway = self.gateway or SparkContext._gateway
        SparkContext._gateway = None
        SparkContext._jvm = None
        if gateway is not None:
            stop_gateway(gateway)


def stop_gateway(gateway, timeout: float = 20.0) -> None:
    """Close the py4j gateway and wait for the JVM (and its Python workers) to exit."""
    import psutil

    proc = getattr(gateway, "proc", None)
    family = []
    if proc is not None:
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
    try:
        gateway.shutdown()
    except Exception:
        pass
    if proc is None:
        return
    if proc.stdin:
        try:
            proc.stdin.close()  # the JVM exits when its stdin closes
        except OSError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(family, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
