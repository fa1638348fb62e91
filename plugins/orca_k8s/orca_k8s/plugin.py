"""Registers the modes of orca-k8s with Orca."""

from orca_core import hookimpl
from orca_core.records import ClusterMode, Option
from orca_core.spark_cluster import CONTAINER_OPTIONS, SPARK_CLUSTER_OPTIONS
from orca_core.spark_security import ENCRYPTION_OPTION
from orca_k8s.backends import K8sClientBackend, K8sClusterBackend

OPTIONS = (
    Option("container_image", help="image of the executor (and driver) pods; required"),
    Option("master", help="API server, 'k8s://https://host:6443' (default: the kubeconfig context, or in-cluster)"),
    Option("namespace", help="namespace of the pods (default: the context's namespace, else 'default')"),
    Option("kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"),
    Option("context", help="kubeconfig context (default: its current-context)"),
    Option("service_account", help="service account of the pods"),
    Option("image_pull_policy", choices=("Always", "IfNotPresent", "Never"), help="pull policy of the image"),
    Option("image_pull_secrets", (str, list, tuple), help="names of image pull secrets"),
    Option("volumes", dict, help="PersistentVolumeClaims to mount in every pod: {claim_name: mount_path}"),
    Option("file_upload_path", help="where Spark uploads local files for the pods (s3a://, hdfs://...)"),
    Option("lease_seconds", int, 60, help="an application whose driver stopped renewing for this long is removed"),
    Option("main_file", help="k8s-cluster: the program's path inside the image (default: this program, uploaded)"),
    Option("ray_image", help="runtime='ray': image of the Ray cluster (default: container_image)"),
    Option("wait_timeout", (int, float), 600, help="seconds to wait for pods and the Ray cluster to come up"),
    *SPARK_CLUSTER_OPTIONS,
    *CONTAINER_OPTIONS,
    ENCRYPTION_OPTION,
)


@hookimpl
def orca_cluster_modes():
    yield ClusterMode(
        "k8s-client", K8sClientBackend, "Spark executors (and Ray) in Kubernetes pods, the driver here",
        aliases=("k8s",), options=OPTIONS,
    )
    yield ClusterMode(
        "k8s-cluster", K8sClusterBackend, "spark-submit the program into a Kubernetes driver pod and follow it",
        options=OPTIONS,
    )


@hookimpl
def orca_cli_commands(subparsers):
    from orca_k8s.cli import add_commands

    add_commands(subparsers.add_parser("k8s", help="Kubernetes housekeeping").add_subparsers(
        dest="k8s_command", required=True))
