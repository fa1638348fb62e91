"""The plan of k8s-client and k8s-cluster: pure, read from kubeconfig, the user's conf wins."""

import json
import sys
import tarfile

import pytest

from orca_core import plan_orca_context
from orca_core.cli import main as orca
from orca_core.errors import ConfigError
from orca_core.ports import is_loopback, outward_address


def plan(**kwargs):
    kwargs.setdefault("container_image", "repo/spark-py:4")
    return plan_orca_context(**kwargs)


def test_client_plan_sizes_executors_from_resources(cluster):
    p = plan(cluster_mode="k8s-client", cores=3, memory="5g", num_nodes=4)
    conf = p.spark_conf
    assert p.master == f"k8s://{cluster.url}"
    assert conf["spark.executor.instances"] == "4"
    assert conf["spark.executor.cores"] == "3"
    assert conf["spark.executor.memory"] == "5120m"
    assert conf["spark.kubernetes.namespace"] == "default"
    assert conf["spark.kubernetes.container.image"] == "repo/spark-py:4"
    app = conf["spark.kubernetes.executor.podNamePrefix"]
    assert conf["spark.kubernetes.executor.label.orca.dev/app"] == app
    assert conf["spark.kubernetes.executor.podTemplateFile"].endswith(f"{app}/executor-pod.json")
    # the API server is on loopback here, but the executors are in pods: this host's outward address
    assert conf["spark.driver.host"] == outward_address() and not is_loopback(conf["spark.driver.host"])
    assert conf["spark.pyspark.python"] == "python3"  # the image's, never a path of this machine
    assert "spark.kubernetes.driver.pod.name" not in conf
    assert p.ray is None


def test_alias_options_and_user_conf_win(cluster, tmp_path):
    archive = tmp_path / "env.tar.gz"
    (tmp_path / "bin").mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "bin", "bin")
    p = plan(
        cluster_mode="k8s", namespace="team", service_account="spark", image_pull_policy="Always",
        image_pull_secrets="reg1, reg2", driver_host="10.1.2.3", driver_cores=2, driver_memory="3g",
        volumes={"data-claim": "/data"}, penv_archive=str(archive), file_upload_path="s3a://b/up",
        conf={"spark.executor.memory": "7g", "spark.kubernetes.namespace": "team"},
    )
    conf = p.spark_conf
    assert p.cluster_mode == "k8s-client"
    assert conf["spark.kubernetes.namespace"] == "team"
    assert conf["spark.kubernetes.authenticate.executor.serviceAccountName"] == "spark"
    assert conf["spark.kubernetes.container.image.pullPolicy"] == "Always"
    assert conf["spark.kubernetes.container.image.pullSecrets"] == "reg1,reg2"
    assert conf["spark.driver.host"] == "10.1.2.3"
    assert conf["spark.driver.bindAddress"] == "0.0.0.0"
    assert conf["spark.driver.cores"] == "2"
    assert conf["spark.driver.memory"] == "3072m"
    assert conf["spark.kubernetes.executor.volumes.persistentVolumeClaim.data-claim.mount.path"] == "/data"
    assert conf["spark.kubernetes.executor.volumes.persistentVolumeClaim.data-claim.options.claimName"] == "data-claim"
    assert conf["spark.archives"] == f"{archive}#python_env"
    assert conf["spark.pyspark.python"] == "./python_env/bin/python"
    assert conf["spark.pyspark.driver.python"] == sys.executable
    assert conf["spark.kubernetes.file.upload.path"] == "s3a://b/up"
    assert conf["spark.executor.memory"] == "7g"


def test_namespace_from_the_context_and_master_option(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig(tmp_path / "kc", namespace="team"))
    assert plan(cluster_mode="k8s-client").spark_conf["spark.kubernetes.namespace"] == "team"
    p = plan(cluster_mode="k8s-client", master="k8s://https://api.example:6443")
    assert p.master == "k8s://https://api.example:6443"


def test_ray_on_spark_adds_executor_memory(cluster):
    p = plan(cluster_mode="k8s-client", cores=2, memory="4g", num_nodes=3, init_ray_on_spark=True,
             extra_executor_memory_for_ray="2g")
    assert p.spark_conf["spark.executor.memoryOverhead"] == f"{(409 + 2048)}m"
    assert (p.ray.kind, p.ray.num_nodes, p.ray.spark_executors, p.ray.cpus_per_node) == ("on-spark", 3, 3, 2)
    assert p.ray.object_store_memory == 2 << 30


def test_runtime_ray_plans_a_raycluster(cluster):
    p = plan(cluster_mode="k8s-client", runtime="ray", num_nodes=3, cores=2)
    assert p.spark is None
    assert p.ray.kind == "attach"
    assert p.ray.address.startswith("ray://orca-") and p.ray.address.endswith("-head-svc.default.svc:10001")


def test_in_a_pod_the_driver_uses_the_pod(cluster, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("HOSTNAME", "notebook-0")
    monkeypatch.setenv("POD_IP", "10.244.1.7")
    conf = plan(cluster_mode="k8s-client").spark_conf
    assert conf["spark.kubernetes.driver.pod.name"] == "notebook-0"
    assert conf["spark.driver.host"] == "10.244.1.7"
    assert conf["spark.driver.port"] == "7078"


def test_container_image_is_required(cluster):
    with pytest.raises(ConfigError, match="needs container_image"):
        plan_orca_context(cluster_mode="k8s-client")


@pytest.mark.parametrize("options, message", [
    ({"volumes": {"claim": "relative"}}, "absolute mount paths"),
    ({"penv_archive": "/nonexistent/env.tar.gz"}, "penv_archive"),
    ({"image_pull_policy": "Sometimes"}, "must be one of"),
    ({"kubeconfig": "/nonexistent/kubeconfig"}, "does not exist"),
    ({"context": "nope"}, "context 'nope' is not in"),
])
def test_bad_options_are_clear(cluster, options, message):
    with pytest.raises(ConfigError, match=message):
        plan(cluster_mode="k8s-client", **options)


def test_no_cluster_at_all(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="no Kubernetes cluster to talk to"):
        plan(cluster_mode="k8s-client")


def test_cluster_plan_is_a_spark_submit_argv(cluster):
    p = plan(cluster_mode="k8s-cluster", main_file="/opt/app/job.py", num_nodes=2)
    argv = list(p.submit_argv)
    assert p.spark is None
    assert argv[1:5] == ["--master", f"k8s://{cluster.url}", "--deploy-mode", "cluster"]
    assert argv[-len(sys.argv[1:]) - 1] == "local:///opt/app/job.py"
    app = p.spark_conf["spark.kubernetes.executor.podNamePrefix"]
    assert p.spark_conf["spark.kubernetes.driver.pod.name"] == f"{app}-driver"
    assert p.spark_conf["spark.kubernetes.submission.waitAppCompletion"] == "false"
    assert "--conf" not in argv  # the conf is submitted in a private properties file


def test_cluster_mode_needs_an_upload_path_for_local_files(cluster):
    with pytest.raises(ConfigError, match="file_upload_path"):
        plan(cluster_mode="k8s-cluster")
    p = plan(cluster_mode="k8s-cluster", file_upload_path="s3a://bucket/orca")
    assert p.spark_conf["spark.kubernetes.file.upload.path"] == "s3a://bucket/orca"


def test_orca_plan_prints_the_whole_plan(cluster, capsys):
    code = orca(["plan", "--cluster-mode", "k8s-client", "--cores", "2", "--num-nodes", "2",
                 "--option", "container_image=img:1", "--option", "namespace=team",
                 "--conf", "spark.executor.memory=3g"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["master"] == f"k8s://{cluster.url}"
    assert printed["spark_conf"]["spark.executor.instances"] == "2"
    assert printed["spark_conf"]["spark.executor.memory"] == "3g"
    assert printed["spark_conf"]["spark.kubernetes.namespace"] == "team"
    assert cluster.run(lambda: len(cluster.handler)) == 0  # planning never calls the API server


def test_orca_plan_without_image_is_an_error(cluster, capsys):
    assert orca(["plan", "--cluster-mode", "k8s-client"]) == 2
    assert "needs container_image" in capsys.readouterr().err


def test_ship_python_env_names_the_archive_by_content_key(cluster):
    from orca_core.shipping import environment_key

    _, key = environment_key(keep_spark_jars=False, compress=True)
    conf = plan(cluster_mode="k8s-client", ship_python_env=True).spark_conf
    # unpacked as ./python_env, as in every mode (docs/shipping.md)
    assert conf["spark.archives"].endswith(f"-{key}.tar.gz#python_env")
    assert conf["spark.pyspark.python"] == "./python_env/bin/python"
    with pytest.raises(ConfigError, match="not both"):
        plan(cluster_mode="k8s-client", ship_python_env=True, penv_archive="/x.tar.gz")


def test_cluster_mode_ships_a_directory_in_extra_python_lib_as_a_zip(cluster, tmp_path):
    lib = tmp_path / "helpers"
    lib.mkdir()
    (lib / "text.py").write_text("X = 1\n")
    p = plan(cluster_mode="k8s-cluster", main_file="/opt/app/job.py", extra_python_lib=str(lib),
             file_upload_path="s3a://bucket/orca")
    argv = list(p.submit_argv)
    shipped = argv[argv.index("--py-files") + 1]
    assert shipped.endswith(".zip") and shipped != str(lib)
    assert p.py_files == (shipped,)


def test_driver_memory_defaults_to_sparks(cluster):
    conf = plan(cluster_mode="k8s-client").spark_conf
    assert "spark.driver.memory" not in conf and "spark.driver.cores" not in conf


@pytest.mark.parametrize("mode", ["k8s-client", "k8s-cluster"])
def test_spark_authenticates_by_default_and_the_users_conf_wins(cluster, mode):
    options = {"cluster_mode": mode, "main_file": "/opt/app/job.py"} if mode == "k8s-cluster" else {"cluster_mode": mode}
    conf = plan(**options).spark_conf
    assert conf["spark.authenticate"] == "true"
    assert "spark.network.crypto.enabled" not in conf
    assert not [key for key in conf if "secret" in key]  # Spark makes its own and puts it in the executor pods' env
    encrypted = plan(spark_encryption=True, **options).spark_conf
    assert encrypted["spark.network.crypto.enabled"] == encrypted["spark.io.encryption.enabled"] == "true"
    assert plan(conf={"spark.authenticate": "false"}, **options).spark_conf["spark.authenticate"] == "false"


@pytest.mark.parametrize("mode", ["k8s-client", "k8s-cluster"])
def test_with_an_external_shuffle_service_authentication_is_left_to_the_user(cluster, mode):
    options = {"cluster_mode": mode, "main_file": "/opt/app/job.py"} if mode == "k8s-cluster" else {"cluster_mode": mode}
    shuffle = {"spark.shuffle.service.enabled": "true"}
    assert "spark.authenticate" not in plan(conf=shuffle, **options).spark_conf
    with pytest.raises(ConfigError, match="external shuffle service"):
        plan(spark_encryption=True, conf=shuffle, **options)
