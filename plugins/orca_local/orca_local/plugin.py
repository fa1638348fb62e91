"""Registers the modes of orca-local with Orca."""

from orca_core import hookimpl
from orca_core.backend import RAY_ON_SPARK_OPTIONS
from orca_core.records import ClusterMode
from orca_core.spark_cluster import NODE_ENV_OPTIONS, SHIPPING_OPTIONS
from orca_core.spark_security import ENCRYPTION_OPTION
from orca_local.backends import LocalBackend, SparkSubmitBackend


@hookimpl
def orca_cluster_modes():
    yield ClusterMode(
        "local", LocalBackend,
        "Spark local[cores] and a local Ray on this machine (or local-cluster[...] from conf, with Ray on Spark "
        "and a shipped environment)",
        options=(ENCRYPTION_OPTION, *RAY_ON_SPARK_OPTIONS, *SHIPPING_OPTIONS, *NODE_ENV_OPTIONS),
    )
    yield ClusterMode(
        "spark-submit", SparkSubmitBackend,
        "attach to the SparkContext of this program (spark-submit, a pyspark shell, a notebook)",
        options=RAY_ON_SPARK_OPTIONS,
    )
