"""A Spark standalone master and workers on this machine, owned by the driver."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

from orca_core import spark_security
from orca_core.ports import free_ports
from orca_core.supervised import Supervised

LOOPBACK = "127.0.0.1"
MASTER_READY = "I have been elected leader!"
WORKER_READY = "Successfully registered with master"


def spark_class() -> str:
    from pyspark.find_spark_home import _find_spark_home

    return os.path.join(_find_spark_home(), "bin", "spark-class")


class LocalStandaloneCluster:
    """`workers` workers of `cores` cores and `memory_mb` MiB each, web UIs on loopback.

    With a `secret`, the daemons authenticate every connection with it (Spark's `spark.authenticate`)
    and read it from their environment; `conf` (no secrets) is the daemons' properties file.
    """

    def __init__(self, workdir: str, workers: int, cores: int, memory_mb: int, secret: str | None = None,
                 conf: dict[str, str] | None = None):
        self.workdir = os.path.join(workdir, "standalone")
        self.workers = workers
        self.cores = cores
        self.memory_mb = memory_mb
        self.secret = secret
        self.conf = dict(conf or {})
        self.master_url = ""
        self.master_ui = ""
        self._daemons: list[Supervised] = []

    def start(self) -> str:
        """Start the master, then every worker at once; return the master URL when all have registered."""
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        env = {**os.environ, "SPARK_LOCAL_IP": LOOPBACK, "PYSPARK_PYTHON": sys.executable,
               "SPARK_NO_DAEMONIZE": "1"}
        if self.secret:
            env[spark_security.DAEMON_ENV] = self.secret
        properties = spark_security.write_properties(os.path.join(self.workdir, "daemons.conf"), self.conf)
        port, ui, *worker_uis = free_ports(2 + self.workers)
        self.master_url = f"spark://{LOOPBACK}:{port}"
        self.master_ui = f"http://{LOOPBACK}:{ui}"
        master = Supervised(
            "the Spark standalone master",
            [spark_class(), "org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port", str(port),
             "--webui-port", str(ui), "--properties-file", properties],
            MASTER_READY, os.path.join(self.workdir, "master.log"), env,
        )
        self._daemons.append(master)
        master.start()
        workers = []
        for i, worker_ui in enumerate(worker_uis):
            work_dir = os.path.join(self.workdir, f"worker-{i}")
            os.makedirs(work_dir, mode=0o700, exist_ok=True)
            workers.append(Supervised(
                f"Spark standalone worker {i}",
                [spark_class(), "org.apache.spark.deploy.worker.Worker", "--host", LOOPBACK,
                 "--cores", str(self.cores), "--memory", f"{self.memory_mb}m", "--work-dir", work_dir,
                 "--webui-port", str(worker_ui), "--properties-file", properties, self.master_url],
                WORKER_READY, os.path.join(self.workdir, f"worker-{i}.log"), env,
            ))
        self._daemons.extend(workers)
        with ThreadPoolExecutor(max_workers=len(workers)) as pool:
            for future in [pool.submit(w.start) for w in workers]:
                future.result()
        return self.master_url

    def stop(self) -> None:
        """Stop the workers (and their executors), then the master; idempotent."""
        daemons, self._daemons = self._daemons, []
        for daemon in reversed(daemons):
            daemon.stop()
