"""Registers the "slurm" mode with Orca."""

from orca_core import hookimpl
from orca_core.records import ClusterMode, Option
from orca_core.spark_cluster import CONTAINER_OPTIONS, SPARK_CLUSTER_OPTIONS
from orca_core.spark_security import ENCRYPTION_OPTION
from orca_slurm.backends import SlurmBackend

SLURM_OPTIONS = (
    Option("partition", str, help="partition of the allocation Orca requests (default: the cluster's default)"),
    Option("account", str, help="account the allocation is charged to"),
    Option("time_limit", str, help="time limit of the allocation, as salloc --time takes it, e.g. '2:00:00'"),
    Option("salloc_args", list, help="more salloc flags, e.g. ['--constraint=ib', '--qos=long']"),
    Option("pending_timeout", (int, float), 300, help="seconds the allocation may stay pending before Orca "
           "withdraws it and raises"),
    Option("spark_home", str, help="the Spark the nodes run the daemons of (default: this pyspark's, on the "
           "shared file system)"),
    ENCRYPTION_OPTION,
    *SPARK_CLUSTER_OPTIONS,
    *CONTAINER_OPTIONS,
)


@hookimpl
def orca_cluster_modes():
    yield ClusterMode(
        "slurm", SlurmBackend,
        "a Spark standalone cluster (and Ray on it) on the nodes of a Slurm allocation: the one this "
        "program runs in, or one Orca requests",
        options=SLURM_OPTIONS,
    )
