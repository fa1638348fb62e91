"""A Spark standalone master and workers on this machine, owned by the driver."""

from __future__ import annotations

import os
import sys

from orca_core import spark_security
from orca_core.ports import free_ports
from orca_core.spark_daemons import SparkDaemons, master_command, worker_command

LOOPBACK = "127.0.0.1"


class LocalStandaloneCluster:
    """`workers` workers of `cores` cores and `memory_mb` MiB each, web UIs on loopback.

    With a `secret`, the daemons authenticate every connection with it (Spark's `spark.authenticate`)
    and read it from their environment; `conf` (no secrets) is the daemons' properties file.
    The master's supervisor removes `workdir` once the master is gone, also after the driver died.
    """

    def __init__(self, workdir: str, workers: int, cores: int, memory_mb: int, secret: str | None = None,
                 conf: dict[str, str] | None = None):
        self.root = workdir
        self.workdir = os.path.join(workdir, "standalone")
        self.workers = workers
        self.cores = cores
        self.memory_mb = memory_mb
        self.secret = secret
        self.conf = dict(conf or {})
        self.master_url = ""
        self.master_ui = ""
        self._daemons: SparkDaemons | None = None

    def start(self) -> str:
        """Start the master, then every worker at once; return the master URL when all have registered."""
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        env = {**os.environ, "SPARK_LOCAL_IP": LOOPBACK, "PYSPARK_PYTHON": sys.executable}
        if self.secret:
            env[spark_security.DAEMON_ENV] = self.secret
        properties = spark_security.write_properties(os.path.join(self.workdir, "daemons.conf"), self.conf)
        port, ui, *worker_uis = free_ports(2 + self.workers)
        self.master_ui = f"http://{LOOPBACK}:{ui}"
        self._daemons = SparkDaemons(self.workdir, env, cleanup=self.root)
        self.master_url = self._daemons.start_master(master_command(LOOPBACK, port, ui, properties=properties))
        work_dirs = [os.path.join(self.workdir, f"worker-{i}") for i in range(self.workers)]
        for work_dir in work_dirs:
            os.makedirs(work_dir, mode=0o700, exist_ok=True)
        self._daemons.start_workers([
            worker_command(self.master_url, LOOPBACK, self.cores, self.memory_mb, work_dir, worker_ui,
                           properties=properties)
            for work_dir, worker_ui in zip(work_dirs, worker_uis, strict=True)
        ])
        return self.master_url

    def stop(self) -> None:
        """Stop the workers (and their executors), then the master; idempotent."""
        daemons, self._daemons = self._daemons, None
        if daemons is not None:
            daemons.stop()
