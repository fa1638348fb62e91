"""Registers the modes of orca-standalone with Orca."""

from orca_core import hookimpl
from orca_core.backend import RAY_ON_SPARK_OPTIONS
from orca_core.records import ClusterMode, Option
from orca_standalone.backends import RayClusterBackend, StandaloneBackend

STANDALONE_OPTIONS = (
    Option("master", str, help="spark://host:port of a running cluster (default: start one on this machine)"),
    Option("driver_memory", (int, str), help="memory of the driver JVM, e.g. '1g' (default: Spark's)"),
    Option("ship_python_env", bool, False, help="pack this environment and ship it to the executors"),
    Option("penv_archive", str, help="a packed environment archive to ship as is"),
    Option("conda_name", str, help="the conda environment to pack and ship"),
    Option("keep_spark_jars", bool, False, help="keep pyspark's jars in the shipped environment"),
    *RAY_ON_SPARK_OPTIONS,
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
