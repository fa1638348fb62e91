"""orca-team: the team's Spark cluster as cluster_mode="team", built on Orca's Spark-cluster layer."""

import os

from orca_core import hookimpl
from orca_core.errors import ConfigError
from orca_core.records import ClusterMode, Option
from orca_core.spark_cluster import SPARK_CLUSTER_OPTIONS, SparkClusterBackend


class TeamBackend(SparkClusterBackend):
    """Executors on the team's standalone cluster, whose master is an option or $TEAM_SPARK_MASTER.

    The layer sizes executors and the driver, ships the environment (ship_python_env=True) and
    extra_python_lib, plans Ray on Spark (init_ray_on_spark=True), and lets the user's conf win.
    """

    def plan(self):  # pure: no processes, no uploads
        master = self.options["master"] or os.environ.get("TEAM_SPARK_MASTER")
        if not master:
            raise ConfigError('cluster_mode="team" needs master="spark://host:7077" or $TEAM_SPARK_MASTER')
        r, pool = self.request, self.options["pool"]
        conf = {"spark.cores.max": str(r.resources.cores * r.resources.num_nodes)}
        if pool:
            conf["spark.scheduler.pool"] = pool
        return self.spark_plan(master, conf)

    def start(self, plan):  # bring up what the plan needs
        self.ship(plan)  # pack the environment, once per content key


@hookimpl
def orca_cluster_modes():
    yield ClusterMode("team", TeamBackend, "the team's Spark standalone cluster", options=(
        Option("master", str, help="spark://host:port (default: $TEAM_SPARK_MASTER)"),
        Option("pool", str, help="the fair-scheduler pool of this program's jobs"),
        *SPARK_CLUSTER_OPTIONS,
    ))
