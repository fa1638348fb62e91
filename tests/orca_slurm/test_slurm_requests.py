"""Planning a Slurm request, and each way one cannot work: a clear OrcaError before anything is queued."""

import os
import re
import subprocess
import sys

import pytest
from orca_slurm.slurm import SlurmError

from orca_core import init_orca_context, plan_orca_context
from orca_core.errors import ConfigError, OrcaError
from orca_core.ports import free_ports, is_loopback, outward_address, wait_for
from orca_core.spark_security import SECRET

SMALL = {"cores": 1, "memory": "1g", "num_nodes": 1}


def test_no_slurm_client_on_path(idle_slurm, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    with pytest.raises(SlurmError, match=r"salloc, srun, sinfo, scontrol, scancel, squeue are not on PATH.*module load"):
        init_orca_context("slurm", **SMALL)


def test_controller_unreachable(idle_slurm, monkeypatch, tmp_path):
    (port,) = free_ports(1)
    conf = tmp_path / "slurm.conf"
    conf.write_text(re.sub(r"SlurmctldPort=\d+", f"SlurmctldPort={port}", open(idle_slurm.conf).read()))
    monkeypatch.setenv("SLURM_CONF", str(conf))
    with pytest.raises(SlurmError, match=r"the Slurm controller is unreachable \(.*DOWN\): check SLURM_CONF"):
        init_orca_context("slurm", **SMALL)


def test_slurm_conf_that_is_not_a_file(idle_slurm, monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))
    with pytest.raises(SlurmError, match=r"SLURM_CONF=.*missing.conf is not a file"):
        init_orca_context("slurm", **SMALL)


def test_more_cpus_or_memory_than_any_node_of_the_partition_has(idle_slurm):
    cpus, memory_mb = idle_slurm.largest()
    with pytest.raises(SlurmError, match=rf'partition "debug" can never give 1 node\(s\) of {cpus + 1} core'):
        init_orca_context("slurm", cores=cpus + 1, memory="1g", num_nodes=1)
    with pytest.raises(SlurmError, match=r"can never give 1 node\(s\) of 1 core\(s\) and \d+ MB") as refused:
        init_orca_context("slurm", cores=1, memory=f"{memory_mb + 1}m", num_nodes=1)
    asked = int(re.search(r"and (\d+) MB", str(refused.value)).group(1))
    assert asked > memory_mb  # the executor's memory and Spark's overhead
    assert idle_slurm.jobs() == []  # checked up front: nothing was queued


@pytest.mark.parametrize("ask, said", [
    ({"cores": 1, "memory": "1g", "num_nodes": 2}, r"can never give 2 node\(s\).*1 of its 1 node\(s\) are that big"),
    ({**SMALL, "partition": "gpu"}, r'Slurm has no partition "gpu"; partitions: debug, short, remote'),
    ({**SMALL, "num_nodes": 2, "partition": "short"}, r'num_nodes=2, but partition "short" allows at most 1 node'),
    ({**SMALL, "partition": "short", "time_limit": "1:30"}, r"time_limit='1:30', but partition \"short\" allows at "
     r"most 00:01:00 \(MaxTime\)"),
])
def test_a_request_the_partition_can_never_satisfy(idle_slurm, ask, said):
    with pytest.raises(SlurmError, match=said):
        init_orca_context("slurm", **ask)
    assert idle_slurm.jobs() == []  # checked up front: nothing was queued


def test_an_allocation_pending_past_its_timeout_is_withdrawn(idle_slurm, tmp_path):
    hog = subprocess.Popen(["salloc", "--nodes=1", f"--cpus-per-task={idle_slurm.cpus}", "--mem=100M", "--job-name=hog",
                            sys.executable, "-c", "print('HELD', flush=True); import sys; sys.stdin.read()"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           env=idle_slurm.env)
    try:
        assert hog.stdout.readline().strip() == "HELD"
        with pytest.raises(SlurmError, match=r"(?s)stayed pending for 3s and was withdrawn.*queued and waiting.*"
                                             "pending_timeout"):
            init_orca_context("slurm", pending_timeout=3, **SMALL)
        assert [line.split()[1] for line in idle_slurm.jobs()] == ["RUNNING"]  # only the hog is left
    finally:
        hog.stdin.close()
        hog.wait(timeout=60)
    wait_for(lambda: not idle_slurm.jobs(), 30, "the hog's job to end")


def test_salloc_refusing_says_why(idle_slurm):
    with pytest.raises(SlurmError, match=r"(?s)Slurm refused the allocation.*salloc.*--account=nobody.*error"):
        init_orca_context("slurm", account="nobody", time_limit="not-a-time", **SMALL)
    assert idle_slurm.jobs() == []


def test_request_options_inside_an_allocation_are_an_error(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "node[1-2]")
    with pytest.raises(ConfigError, match="runs in Slurm job 42.*partition, time_limit apply only"):
        plan_orca_context("slurm", partition="debug", time_limit="1:00", **SMALL)
    plan = plan_orca_context("slurm", **SMALL)
    assert plan.cluster["job"] == "42" and plan.cluster["salloc"] is None
    assert plan.cluster["worker_step"][:2] == ["srun", "--jobid=42"]


@pytest.mark.parametrize("options, said", [
    ({"salloc_args": ["--nodes=4"]}, "salloc_args may not set --nodes"),
    ({"salloc_args": [7]}, "salloc_args must be a list of strings"),
    ({"pending_timeout": 0}, "pending_timeout=0 must be a positive"),
    ({"partiton": "debug"}, 'unknown option "partiton" \\(did you mean "partition"\\?\\)'),
])
def test_bad_options(monkeypatch, options, said):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(OrcaError, match=said):
        plan_orca_context("slurm", **SMALL, **options)


def test_nodes_run_this_interpreter_unless_the_environment_ships(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    shared = plan_orca_context("slurm", **SMALL)
    assert shared.env["PYSPARK_PYTHON"] == sys.executable
    assert shared.python_env is None and "spark.archives" not in shared.spark_conf
    shipped = plan_orca_context("slurm", ship_python_env=True, **SMALL)
    assert shipped.env["PYSPARK_PYTHON"] == "./python_env/bin/python"
    assert shipped.spark_conf["spark.archives"] == f"{shipped.python_env.archive}#python_env"


def test_driver_host_is_planned_as_given_else_on_the_route_to_the_controller(monkeypatch, tmp_path):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    here = outward_address()
    assert not is_loopback(here), "the test needs an address of this host besides loopback"
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"ClusterName=elsewhere\n# SlurmctldHost=commented(10.9.9.9)\nSlurmctldHost=ctl({here})\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    routed = plan_orca_context("slurm", **SMALL)
    assert routed.spark_conf["spark.driver.host"] == routed.cluster["driver_host"] == here
    assert "spark.driver.bindAddress" not in routed.spark_conf
    given = plan_orca_context("slurm", driver_host="10.1.2.3", **SMALL)
    assert (given.spark_conf["spark.driver.host"], given.spark_conf["spark.driver.bindAddress"]) == ("10.1.2.3",
                                                                                                    "0.0.0.0")
    assert given.cluster["driver_host"] == "10.1.2.3"
    conf.write_text("SlurmctldHost=localhost(127.0.0.1)\n")  # the controller runs here: the nodes may not
    local = plan_orca_context("slurm", **SMALL)
    assert "spark.driver.host" not in local.spark_conf and local.cluster["driver_host"].startswith("(found at start")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "none.conf"))  # configless: no controller known here
    assert "spark.driver.host" not in plan_orca_context("slurm", **SMALL).spark_conf


def test_inside_an_allocation_the_driver_host_is_on_the_route_to_its_nodes(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "localhost")
    assert plan_orca_context("slurm", **SMALL).cluster["driver_host"] == "127.0.0.1"
    assert plan_orca_context("slurm", driver_host="127.0.0.1", **SMALL).spark_conf["spark.driver.host"] == "127.0.0.1"
    monkeypatch.setenv("SLURM_JOB_NODELIST", "far-node[1-2]")  # other hosts, which do not resolve here
    with pytest.raises(ConfigError, match=r"spark.driver.host=127.0.0.1 is a loopback address, but the Spark workers "
                                          r"may run on other hosts \(far-node1, far-node2\).*driver_host="):
        plan_orca_context("slurm", driver_host="127.0.0.1", **{**SMALL, "num_nodes": 2})
    with pytest.raises(ConfigError, match=r"spark.driver.host=localhost is a loopback"):
        plan_orca_context("slurm", conf={"spark.driver.host": "localhost"}, **SMALL)
    assert "spark.driver.host" not in plan_orca_context("slurm", **SMALL).spark_conf  # found at start


def test_a_loopback_driver_host_is_refused_where_the_nodes_are_other_hosts(idle_slurm):
    with pytest.raises(ConfigError, match=r'loopback address, but the Spark workers may run on other hosts \(partition '
                                          r'"remote": far \(198.51.100.7\)\)'):
        init_orca_context("slurm", partition="remote", driver_host="127.0.0.1", pending_timeout=5, **SMALL)
    assert idle_slurm.jobs() == []  # checked before anything was queued


def test_the_daemons_authenticate_and_the_plan_holds_no_secret(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    plan = plan_orca_context("slurm", spark_encryption=True, **SMALL)
    assert plan.spark_conf["spark.authenticate"] == "true"
    assert plan.spark_conf["spark.network.crypto.enabled"] == plan.spark_conf["spark.io.encryption.enabled"] == "true"
    assert SECRET not in plan.spark_conf
    assert plan.cluster["daemon_env"] == {
        "SPARK_DAEMON_JAVA_OPTS": "-Dspark.authenticate=true -Dspark.network.crypto.enabled=true",
        "_SPARK_AUTH_SECRET": "(the context's secret, given at start)",
    }
    assert "spark.network.crypto.enabled" not in plan_orca_context("slurm", **SMALL).spark_conf
    off = plan_orca_context("slurm", conf={"spark.authenticate": "false", "spark.network.timeout": "300s"}, **SMALL)
    assert off.spark_conf["spark.authenticate"] == "false"  # the user's conf wins, for the daemons too
    assert off.cluster["daemon_env"] == {"SPARK_DAEMON_JAVA_OPTS": "-Dspark.authenticate=false "
                                                                   "-Dspark.network.timeout=300s"}
