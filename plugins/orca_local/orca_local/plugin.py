"""Registers the modes of orca-local with Orca."""

from orca_core import hookimpl
from orca_core.records import ClusterMode, Option

from orca_local.backends import LocalBackend, SparkSubmitBackend

RAY_OPTIONS = (
    Option("object_store_memory", (int, str), help="Ray object store size, e.g. '2g' (default: Ray's)"),
    Option("include_webui", bool, True, help="start the Ray dashboard (on loopback)"),
)


@hookimpl
def orca_cluster_modes():
    yield ClusterMode(
        "local", LocalBackend, "Spark local[cores] and a local Ray on this machine", options=RAY_OPTIONS
    )
    yield ClusterMode(
        "spark-submit", SparkSubmitBackend, "attach to the SparkContext of a program run by spark-submit",
        options=RAY_OPTIONS,
    )
