"""Spark standalone daemons (a master and its workers), each under the supervisor, owned by the driver.

pip's pyspark has no `sbin/start-*.sh`: a daemon runs in the foreground as `bin/spark-class
org.apache.spark.deploy.master.Master` (or `...worker.Worker`) under `orca_core.supervisor`, so it
dies with the driver. A `launcher` prefix runs it elsewhere (e.g. `srun ... --nodelist node`), its
output coming back through the launcher:

    daemons = SparkDaemons(workdir, env)
    url = daemons.start_master(master_command("127.0.0.1", 7077, 8080))
    daemons.start_workers([worker_command(url, "127.0.0.1", 2, 1024, workdir + "/w0", 8081)])
    daemons.stop()
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

from orca_core.errors import LaunchError
from orca_core.supervised import Supervised, tail

MASTER_READY = "I have been elected leader!"
WORKER_READY = "Successfully registered with master"
MASTER_URL = re.compile(r"Starting Spark master at (spark://\S+)")


def spark_class(spark_home: str | None = None) -> str:
    """`bin/spark-class` of `spark_home`, else of the installed pyspark."""
    if spark_home is None:
        from pyspark.find_spark_home import _find_spark_home

        spark_home = _find_spark_home()
    return os.path.join(spark_home, "bin", "spark-class")


def master_command(host: str, port: int, webui_port: int, spark_home: str | None = None,
                   properties: str | None = None) -> list[str]:
    """A master on `host`; port 0 lets the master pick a free one (its URL is then read from its log).
    `properties` is a Spark properties file the daemon reads (orca_core.spark_security)."""
    return [spark_class(spark_home), "org.apache.spark.deploy.master.Master", "--host", host, "--port", str(port),
            "--webui-port", str(webui_port), *(("--properties-file", properties) if properties else ())]


def worker_command(master_url: str, host: str, cores: int, memory_mb: int, work_dir: str, webui_port: int,
                   spark_home: str | None = None, properties: str | None = None) -> list[str]:
    """A worker of `cores` cores and `memory_mb` MiB on `host`, registering with `master_url`."""
    return [spark_class(spark_home), "org.apache.spark.deploy.worker.Worker", "--host", host, "--cores", str(cores),
            "--memory", f"{memory_mb}m", "--work-dir", work_dir, "--webui-port", str(webui_port),
            *(("--properties-file", properties) if properties else ()), master_url]


class SparkDaemons:
    """A master and its workers; `stop()` ends the workers (and their executors), then the master.

    `env` is the daemons' environment (SPARK_NO_DAEMONIZE is added); logs go to `workdir`;
    `grace` is the supervisor's time between SIGTERM and SIGKILL; `cleanup`, a directory the
    master's supervisor removes once the master is gone (even after the driver died)."""

    def __init__(self, workdir: str, env: dict[str, str], grace: float = 1.0, cleanup: str | None = None):
        self.workdir = workdir
        self.cleanup = cleanup
        self.env = {**env, "SPARK_NO_DAEMONIZE": "1"}
        self.grace = grace
        self._daemons: list[Supervised] = []

    def start_master(self, command: list[str], launcher: list[str] = ()) -> str:
        """Start the master; its URL once it leads."""
        log = os.path.join(self.workdir, "master.log")
        self._start(Supervised("the Spark standalone master", [*launcher, *command], MASTER_READY, log, self.env,
                               self.grace, cleanup=self.cleanup))
        found = MASTER_URL.search(tail(log, 200))
        if found is None:
            raise LaunchError(f"the Spark standalone master did not say its URL (log: {log})")
        return found.group(1)

    def start_workers(self, commands: list[list[str]], launchers: list[list[str]] | None = None) -> None:
        """Start every worker at once; return when all have registered."""
        launchers = launchers or [[] for _ in commands]
        workers = [Supervised(f"Spark standalone worker {i}", [*launcher, *command], WORKER_READY,
                              os.path.join(self.workdir, f"worker-{i}.log"), self.env, self.grace)
                   for i, (command, launcher) in enumerate(zip(commands, launchers, strict=True))]
        self._daemons.extend(workers)
        with ThreadPoolExecutor(max_workers=max(1, len(workers))) as pool:
            for future in [pool.submit(w.start) for w in workers]:
                future.result()

    def _start(self, daemon: Supervised) -> None:
        self._daemons.append(daemon)
        daemon.start()

    def stop(self) -> None:
        """Stop the workers, then the master; idempotent."""
        daemons, self._daemons = self._daemons, []
        for daemon in reversed(daemons):
            daemon.stop()
