"""Planning yarn-client and yarn-cluster: pure data from the Hadoop conf dir, nothing uploaded or submitted."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys

import pytest
from orca_yarn.hadoop import HadoopConf

from orca_core import plan_orca_context
from orca_core.errors import ConfigError
from orca_core.testing import ClusterModeConformance

ENV = "hdfs:///shared/envs/team-env.tar.gz"


@pytest.fixture
def base(hadoop_conf, spark_home):
    return {"hadoop_conf": str(hadoop_conf), "penv_archive": ENV, "spark_home": str(spark_home),
            "hadoop_user_name": "alice"}


class TestYarnClientConformance(ClusterModeConformance):
    cluster_mode = "yarn-client"

    @pytest.fixture(autouse=True)
    def _options(self, base):
        self.options = base


class TestYarnClusterConformance(ClusterModeConformance):
    cluster_mode = "yarn-cluster"

    @pytest.fixture(autouse=True)
    def _options(self, base):
        self.options = base


def test_client_plan(base, hadoop_conf, rm, webhdfs):
    plan = plan_orca_context(cluster_mode="yarn", cores=4, memory="6g", num_nodes=3, queue="small",
                             extra_executor_memory_for_ray="8g", init_ray_on_spark=True, driver_memory="3g",
                             jars="a.jar,b.jar", additional_archive="hdfs:///data/dict.zip#dict", **base)
    conf = plan.spark_conf
    assert (plan.cluster_mode, plan.master, plan.deploy_mode, plan.spark) == ("yarn-client", "yarn", "client", "launch")
    assert conf["spark.executor.instances"] == "3"
    assert conf["spark.executor.cores"] == "4"
    assert conf["spark.executor.memory"] == "6144m"
    # Spark's own overhead (10% of 6g) plus the memory for Ray, which is also the object store's default
    assert conf["spark.executor.memoryOverhead"] == f"{614 + 8192}m"
    assert plan.ray.object_store_memory == 8 << 30
    assert conf["spark.driver.memory"] == "3072m"
    assert conf["spark.yarn.queue"] == "small"
    assert conf["spark.jars"] == "a.jar,b.jar"
    assert conf["spark.yarn.dist.archives"] == f"{ENV}#python_env,hdfs:///data/dict.zip#dict"
    assert plan.archives == (f"{ENV}#python_env", "hdfs:///data/dict.zip#dict")
    assert conf["spark.pyspark.python"] == "./python_env/bin/python"
    assert conf["spark.pyspark.driver.python"] == sys.executable
    assert conf["spark.submit.deployMode"] == "client"
    # Spark's jars are staged once per Spark version in the user's Orca folder on HDFS
    assert conf["spark.yarn.archive"].startswith("hdfs://127.0.0.1:8020/user/alice/.orca/spark/spark-9.9.9-")
    assert conf["spark.yarn.archive"].endswith(".zip")
    assert plan.env["HADOOP_CONF_DIR"] == str(hadoop_conf)
    assert plan.env["HADOOP_USER_NAME"] == "alice"
    assert plan.env["PYSPARK_PYTHON"] == "./python_env/bin/python"
    assert plan.submit_argv is None
    assert (plan.ray.kind, plan.ray.num_nodes, plan.ray.cpus_per_node) == ("on-spark", 3, 4)
    # planning asked nobody anything
    assert rm.requests == [] and webhdfs.requests == []


def test_the_packed_environment_is_named_by_content_and_localised_private(base, monkeypatch, tmp_path):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path))
    shipped = {k: v for k, v in base.items() if k != "penv_archive"}
    first, second = (plan_orca_context(cluster_mode="yarn", **shipped) for _ in range(2))
    from orca_core.shipping import environment_key

    uri = f"hdfs://127.0.0.1:8020/user/alice/.orca/envs/{environment_key()[1]}.tar.gz"
    assert first.python_env.archive == second.python_env.archive == uri  # one path: the NodeManagers' cache hits
    assert first.spark_conf["spark.yarn.dist.archives"] == f"{uri}#python_env"
    assert first.cluster["archive_visibility"] == "PRIVATE"  # from the modes Orca uploads with, by YARN's rule


@pytest.mark.parametrize(("file_mode", "folder_mode", "seen"), [
    ("600", "700", "PRIVATE"), ("644", "700", "PRIVATE"), ("600", "755", "PRIVATE"), ("644", "711", "PUBLIC"),
])
def test_yarn_localises_an_upload_by_its_modes(file_mode, folder_mode, seen):
    from orca_yarn.staging import visibility

    assert visibility(file_mode, folder_mode) == seen


def test_cluster_plan_resubmits_this_program(base):
    plan = plan_orca_context(cluster_mode="yarn-cluster", cores=2, memory="2g", num_nodes=2, **base,
                             conf={"spark.task.maxFailures": "9"})
    conf = plan.spark_conf
    assert (plan.master, plan.deploy_mode, plan.spark, plan.ray) == ("yarn", "cluster", None, None)
    assert conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./python_env/bin/python"
    assert conf["spark.submit.deployMode"] == "cluster"
    assert conf["spark.yarn.maxAppAttempts"] == "1"
    assert "spark.pyspark.driver.python" not in conf
    argv = list(plan.submit_argv)
    assert argv[0] == os.path.join(base["spark_home"], "bin", "spark-submit")
    assert argv[1:5] == ["--master", "yarn", "--deploy-mode", "cluster"]
    assert conf["spark.task.maxFailures"] == "9"  # submitted in a private properties file, not as --conf
    assert "--conf" not in argv and not [a for a in argv if a.startswith("spark.")]
    assert argv[-len(sys.argv):] == [os.path.abspath(sys.argv[0]), *sys.argv[1:]]


def test_user_conf_wins_over_orca_defaults(base):
    plan = plan_orca_context(cluster_mode="yarn-client", memory="2g", **base, conf={
        "spark.executor.memory": "5g", "spark.yarn.archive": "hdfs:///mine/spark.zip",
        "spark.pyspark.python": "/opt/python/bin/python3",
    })
    assert plan.spark_conf["spark.executor.memory"] == "5g"
    assert plan.spark_conf["spark.yarn.archive"] == "hdfs:///mine/spark.zip"
    assert plan.spark_conf["spark.pyspark.python"] == "/opt/python/bin/python3"


def test_spark_yarn_archive_option_skips_staging_jars(base):
    plan = plan_orca_context(cluster_mode="yarn-client", spark_yarn_archive="hdfs:///spark/jars.zip", **base)
    assert plan.spark_conf["spark.yarn.archive"] == "hdfs:///spark/jars.zip"


def test_missing_hadoop_conf_names_both_fixes(base):
    del base["hadoop_conf"]
    with pytest.raises(ConfigError, match=r"hadoop_conf=.*HADOOP_CONF_DIR"):
        plan_orca_context(cluster_mode="yarn-client", **base)


def test_hadoop_conf_dir_from_the_environment(base, hadoop_conf, monkeypatch):
    del base["hadoop_conf"]
    monkeypatch.setenv("HADOOP_CONF_DIR", str(hadoop_conf))
    assert plan_orca_context(cluster_mode="yarn-client", **base).env["HADOOP_CONF_DIR"] == str(hadoop_conf)


def test_hadoop_conf_without_yarn_site_is_refused(base, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no yarn-site.xml"):
        plan_orca_context(cluster_mode="yarn-client", **{**base, "hadoop_conf": str(tmp_path / "empty")})


def test_hadoop_user_from_env_then_password_database(base, monkeypatch):
    del base["hadoop_user_name"]
    monkeypatch.setenv("HADOOP_USER_NAME", "bob")
    plan = plan_orca_context(cluster_mode="yarn-client", **base)
    assert plan.env["HADOOP_USER_NAME"] == "bob"
    assert "/user/bob/.orca/spark/" in plan.spark_conf["spark.yarn.archive"]
    monkeypatch.delenv("HADOOP_USER_NAME")
    me = pwd.getpwuid(os.getuid()).pw_name
    assert plan_orca_context(cluster_mode="yarn-client", **base).env["HADOOP_USER_NAME"] == me


def test_kerberos_needs_principal_and_an_existing_keytab(base, tmp_path):
    with pytest.raises(ConfigError, match="pass keytab"):
        plan_orca_context(cluster_mode="yarn-client", principal="alice@EXAMPLE.COM", **base)
    with pytest.raises(ConfigError, match="is not a file"):
        plan_orca_context(cluster_mode="yarn-client", principal="alice@EXAMPLE.COM", keytab="/nope.keytab", **base)
    keytab = tmp_path / "alice.keytab"
    keytab.write_bytes(b"\x05\x02")
    conf = plan_orca_context(cluster_mode="yarn-client", principal="alice@EXAMPLE.COM", keytab=str(keytab),
                             **base).spark_conf
    assert conf["spark.kerberos.principal"] == "alice@EXAMPLE.COM"
    assert conf["spark.kerberos.keytab"] == str(keytab)


def test_runtime_ray_is_refused_with_the_alternative(base):
    with pytest.raises(ConfigError, match="init_ray_on_spark=True"):
        plan_orca_context(cluster_mode="yarn-client", runtime="ray", **base)


def test_penv_archive_must_be_an_archive(base, tmp_path):
    bad = tmp_path / "env.rar"
    bad.write_bytes(b"x")
    with pytest.raises(ConfigError, match="not an archive Spark can unpack"):
        plan_orca_context(cluster_mode="yarn-client", **{**base, "penv_archive": str(bad)})


def test_inside_the_application_master_the_program_attaches(monkeypatch):
    monkeypatch.setenv("CONTAINER_ID", "container_1700000000000_0042_01_000001")
    monkeypatch.setenv("APP_SUBMIT_TIME_ENV", "1700000000000")
    with pytest.raises(ConfigError, match="not started by Spark"):
        plan_orca_context(cluster_mode="yarn-cluster")
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "45678")
    plan = plan_orca_context(cluster_mode="yarn-cluster", init_ray_on_spark=True, cores=2, num_nodes=2)
    assert (plan.spark, plan.submit_argv, plan.deploy_mode) == ("attach", None, "cluster")
    assert plan.ray.kind == "on-spark" and plan.ray.num_nodes == 2


def test_orca_plan_cli_shows_the_whole_plan_without_side_effects(base, rm, webhdfs):
    options = [f"--option={k}={v}" for k, v in base.items()]
    out = subprocess.run(
        [sys.executable, "-m", "orca_core.cli", "plan", "--cluster-mode", "yarn-cluster", "--num-nodes", "2",
         "--conf", "spark.app.name=my app", *options],
        capture_output=True, text=True, timeout=60, check=True,
    )
    plan = json.loads(out.stdout)
    assert plan["deploy_mode"] == "cluster"
    assert plan["spark_conf"]["spark.executor.instances"] == "2"
    assert plan["archives"] == [f"{ENV}#python_env"]
    assert "--name" in plan["submit_argv"] and "my app" in plan["submit_argv"]
    assert rm.requests == [] and webhdfs.requests == []


def test_addresses_come_from_the_site_files(tmp_path, write_hadoop_conf):
    conf = HadoopConf.load(str(write_hadoop_conf(tmp_path / "c", "http://127.0.0.1:18088", "http://127.0.0.1:19870")))
    assert conf.resourcemanager_urls() == ["http://127.0.0.1:18088"]
    assert conf.namenode_urls() == ["http://127.0.0.1:19870"]
    assert conf.default_fs() == "hdfs://127.0.0.1:8020"


def test_high_availability_addresses(tmp_path):
    folder = tmp_path / "ha"
    folder.mkdir()
    props = {
        "core-site.xml": {"fs.defaultFS": "hdfs://ns1"},
        "hdfs-site.xml": {"dfs.nameservices": "ns1", "dfs.ha.namenodes.ns1": "nn1,nn2",
                          "dfs.namenode.http-address.ns1.nn1": "nn-a:9870",
                          "dfs.namenode.http-address.ns1.nn2": "nn-b:9870"},
        "yarn-site.xml": {"yarn.resourcemanager.ha.enabled": "true", "yarn.resourcemanager.ha.rm-ids": "rm1,rm2",
                          "yarn.resourcemanager.hostname.rm1": "rm-a", "yarn.resourcemanager.webapp.address.rm2":
                          "rm-b:8090"},
    }
    for name, values in props.items():
        rows = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in values.items())
        (folder / name).write_text(f"<configuration>{rows}</configuration>")
    conf = HadoopConf.load(str(folder))
    assert conf.namenode_urls() == ["http://nn-a:9870", "http://nn-b:9870"]
    assert conf.resourcemanager_urls() == ["http://rm-a:8088", "http://rm-b:8090"]


def test_driver_size_defaults_to_sparks(base):
    conf = plan_orca_context(cluster_mode="yarn-client", **base).spark_conf
    assert "spark.driver.memory" not in conf and "spark.driver.cores" not in conf


def test_the_driver_address_is_one_executors_on_other_hosts_reach(base, capsys):
    from orca_core.cli import main as orca
    from orca_core.ports import is_loopback, outward_address

    # the ResourceManager of these tests is on loopback; YARN's executors are not
    host = plan_orca_context(cluster_mode="yarn-client", **base).spark_conf["spark.driver.host"]
    assert host == outward_address() and not is_loopback(host)
    argv = ["plan", "--cluster-mode", "yarn-client", *[f"--option={k}={v}" for k, v in base.items()]]
    assert orca([*argv, "--option", "driver_host=10.1.2.3"]) == 0
    assert json.loads(capsys.readouterr().out)["spark_conf"]["spark.driver.host"] == "10.1.2.3"
    mine = plan_orca_context(cluster_mode="yarn-client", driver_host="10.1.2.3", **base,
                             conf={"spark.driver.host": "10.9.9.9"})
    assert mine.spark_conf["spark.driver.host"] == "10.9.9.9"  # the user's conf wins
    with pytest.raises(ConfigError, match="loopback address, which executors on other hosts cannot reach"):
        plan_orca_context(cluster_mode="yarn-client", **base, conf={"spark.driver.host": "localhost"})
    assert "spark.driver.host" not in plan_orca_context(cluster_mode="yarn-cluster", **base).spark_conf


@pytest.mark.parametrize("mode", ["yarn-client", "yarn-cluster"])
def test_spark_authenticates_by_default_and_spark_encryption_also_encrypts(base, mode):
    conf = plan_orca_context(cluster_mode=mode, **base).spark_conf
    assert conf["spark.authenticate"] == "true" and "spark.network.crypto.enabled" not in conf
    conf = plan_orca_context(cluster_mode=mode, spark_encryption=True, **base).spark_conf
    assert conf["spark.authenticate"] == conf["spark.network.crypto.enabled"] == "true"
    assert conf["spark.io.encryption.enabled"] == "true"
    assert not [key for key in conf if "secret" in key]  # YARN hands Spark's own secret to the containers
    off = plan_orca_context(cluster_mode=mode, spark_encryption=True, conf={"spark.authenticate": "false"}, **base)
    assert off.spark_conf["spark.authenticate"] == "false"  # the user's conf wins


@pytest.mark.parametrize("mode", ["yarn-client", "yarn-cluster"])
def test_with_an_external_shuffle_service_authentication_is_left_to_the_user(base, mode):
    shuffle = {"spark.shuffle.service.enabled": "true"}
    with pytest.raises(ConfigError, match="external shuffle service"):
        plan_orca_context(cluster_mode=mode, spark_encryption=True, conf=shuffle, **base)
    conf = plan_orca_context(cluster_mode=mode, conf={**shuffle, "spark.authenticate": "true"}, **base).spark_conf
    assert conf["spark.authenticate"] == "true" and "spark.network.crypto.enabled" not in conf
    assert "spark.authenticate" not in plan_orca_context(cluster_mode=mode, conf=shuffle, **base).spark_conf


@pytest.mark.parametrize("line,authenticated", [("spark.shuffle.service.enabled  true", False),
                                                ("spark.shuffle.service.enabled=TRUE", False),
                                                ("# spark.shuffle.service.enabled true", True)])
def test_a_shuffle_service_in_spark_defaults_conf_is_seen_by_the_plan(base, tmp_path, monkeypatch, line,
                                                                      authenticated):
    (tmp_path / "spark-defaults.conf").write_text(f"spark.executor.memory 1g\n{line}\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    conf = plan_orca_context(cluster_mode="yarn-client", **base).spark_conf
    assert ("spark.authenticate" in conf) is authenticated
    mine = plan_orca_context(cluster_mode="yarn-client", conf={"spark.shuffle.service.enabled": "false"}, **base)
    assert mine.spark_conf["spark.authenticate"] == "true"  # the user's conf wins over spark-defaults.conf
