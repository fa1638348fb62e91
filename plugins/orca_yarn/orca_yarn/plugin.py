"""Registers the modes and the hdfs:// file system of orca-yarn with Orca."""

from orca_core import hookimpl
from orca_core.records import ClusterMode, FileSystemProvider, Option
from orca_core.spark_cluster import CONTAINER_OPTIONS, SPARK_CLUSTER_OPTIONS
from orca_core.spark_security import ENCRYPTION_OPTION
from orca_yarn.backends import YarnBackend, YarnClusterBackend
from orca_yarn.hdfs_fs import for_hdfs, for_webhdfs

OPTIONS = (
    Option("hadoop_conf", str, help="the Hadoop conf dir holding yarn-site.xml (default: $HADOOP_CONF_DIR)"),
    Option("hadoop_user_name", str, help="the Hadoop user (default: $HADOOP_USER_NAME, else the current user)"),
    Option("queue", str, help="the YARN queue (spark.yarn.queue)"),
    Option("additional_archive", (str, list), help="more archives for spark.yarn.dist.archives ('a.zip#a,...')"),
    Option("spark_yarn_archive", str, help="an archive of Spark's jars already on HDFS (spark.yarn.archive); "
           "default: Orca stages one per Spark version"),
    Option("jars", (str, list), help="extra jars (spark.jars)"),
    Option("principal", str, help="Kerberos principal (with keytab)"),
    Option("keytab", str, help="Kerberos keytab file (with principal)"),
    Option("resourcemanager_url", str, help="ResourceManager web address (default: from yarn-site.xml)"),
    Option("webhdfs_url", str, help="NameNode web address(es), ';'-separated (default: from hdfs-site.xml)"),
    Option("hdfs_dir", str, help="the HDFS folder for Orca's cached archives (default: /user/<user>/.orca)"),
    Option("spark_home", str, help="the Spark installation whose spark-submit and jars are used "
           "(default: $SPARK_HOME, else pyspark's)"),
    Option("timeout", (int, float), 10.0, help="seconds to wait for the ResourceManager and WebHDFS to answer"),
    *(option for option in SPARK_CLUSTER_OPTIONS if option.name != "ship_python_env"),  # YARN always ships
    *CONTAINER_OPTIONS,
    ENCRYPTION_OPTION,
)


@hookimpl
def orca_cluster_modes():
    yield ClusterMode(
        "yarn-client", YarnBackend, "Spark on Hadoop YARN, driver on this machine", aliases=("yarn",), options=OPTIONS
    )
    yield ClusterMode(
        "yarn-cluster", YarnClusterBackend, "Spark on Hadoop YARN, driver in the ApplicationMaster (spark-submit)",
        options=OPTIONS,
    )


@hookimpl
def orca_context_started(context):
    """Print the YARN application id and tracking URL of a yarn-client context."""
    if isinstance(context.backend, YarnBackend) and context.spark is not None and context.plan.spark == "launch":
        context.backend.attach_app(context.spark_context.applicationId)


@hookimpl
def orca_filesystems():
    yield FileSystemProvider("hdfs", for_hdfs, "HDFS through WebHDFS (NameNode from HADOOP_CONF_DIR or ORCA_WEBHDFS_URL)")
    yield FileSystemProvider("webhdfs", for_webhdfs, "HDFS through WebHDFS at the URL's host:port")
