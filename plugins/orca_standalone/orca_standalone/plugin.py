"""Registers the modes of orca-standalone with Orca."""

from orca_core import hookimpl
from orca_core.records import ClusterMode, Option
from orca_core.spark_cluster import NODE_ENV_OPTIONS, SPARK_CLUSTER_OPTIONS
from orca_core.spark_security import ENCRYPTION_OPTION
from orca_standalone.backends import RayClusterBackend, StandaloneBackend

STANDALONE_OPTIONS = (
    Option("master", str, help="spark://host:port of a running cluster (default: start one on this machine)"),
    ENCRYPTION_OPTION,
    *SPARK_CLUSTER_OPTIONS,
    *NODE_ENV_OPTIONS,
)


@hookimpl
def orca_cluster_modes():
    yield ClusterMode(
        "standalone", StandaloneBackend,
        "a Spark standalone cluster: spark://host:port, or num_nodes workers Orca starts on this machine",
        options=STANDALONE_OPTIONS,
    )
    yield ClusterMode(
        "ray", RayClusterBackend, "an existing Ray cluster (address=, or RAY_ADDRESS); no Spark",
        options=(Option("address", str, help="ray://host:port or host:port of the cluster"),
                 Option("env", dict, help="environment variables of the job's Ray workers")),
    )
