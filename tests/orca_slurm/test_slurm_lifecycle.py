"""Spark and Ray in an allocation of a real Slurm: where tasks run, who the daemons admit, and that nothing
outlives the context."""

import glob
import json
import os
import subprocess
import sys
import tempfile

import psutil

from orca_core import init_orca_context, state, stop_orca_context
from orca_core.ports import outward_address, wait_for
from orca_core.spark_security import SECRET
from orca_core.testing import assert_kill_9_leaves_nothing, master_rpc_admits, spark_admits, write_driver


def _on_command_lines(secrets: dict[str, str]) -> list[tuple[str, int, str]]:
    """(which secret, pid, command line) of every process whose command line shows one of `secrets`."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        found += [(name, proc.info["pid"], line[:200]) for name, value in secrets.items() if value in line]
    return found


def test_spark_and_ray_tasks_run_in_the_allocation_it_requests_and_releases(idle_slurm, linked_env_archive):
    def where():  # local: pickled by value, not by this test module's name
        import os
        import sys

        return (*(os.environ.get(key) for key in ("SLURM_JOB_ID", "SLURMD_NODENAME", "SLURM_STEP_ID")), sys.prefix)

    sc = init_orca_context("slurm", cores=1, memory="1g", num_nodes=1, init_ray_on_spark=True, include_webui=False,
                           spark_encryption=True, penv_archive=str(linked_env_archive))
    try:
        (job,) = [line.split()[0] for line in idle_slurm.jobs()]
        assert idle_slurm.jobs() == [f"{job} RUNNING"]
        spark = set(sc.parallelize(range(4), 2).map(lambda _: where()).collect())
        import ray

        ray_tasks = set(ray.get([ray.remote(where).remote() for _ in range(4)]))
        steps = idle_slurm.steps()
        ctx = state.current()
        secrets = {"spark secret": ctx.plan.spark_conf[SECRET], "ray token": ctx.ray.head.token,
                   "control secret": ctx.ray.control.secret}
        exposed = _on_command_lines(secrets)
        masters = [p.info["cmdline"] for p in psutil.process_iter(["cmdline", "environ"])
                   if "org.apache.spark.deploy.master.Master" in (p.info["cmdline"] or [])
                   and (p.info["environ"] or {}).get("SLURM_JOB_ID") == job]
        refused = not spark_admits(sc.master)
        admitted = master_rpc_admits(sc.master, secrets["spark secret"])  # the same probe, holding the secret
        driver_host = (sc.getConf().get("spark.driver.host"), ctx.plan.cluster["driver_host"])
    finally:
        stop_orca_context()
    (spark_where,) = spark
    assert spark_where[:2] == (job, idle_slurm.node)  # the executor is a child of a worker step in the job
    assert spark_where[3].endswith("/python_env")  # running the shipped environment, unpacked by Spark
    (ray_where,) = ray_tasks
    assert ray_where[:2] == (job, idle_slurm.node)  # Ray nodes run inside the executors
    assert ray_where[3].endswith("/python_env")  # with it
    assert spark_where[2] in {s.split(".")[1] for s in steps}
    assert len(steps) == 2  # the master's step and the worker's
    assert refused and admitted  # the master Slurm started admits only who holds the context's secret
    assert not exposed
    (master,) = masters  # the scan saw the master, which got spark.authenticate through its environment
    assert {"-Dspark.authenticate=true", "-Dspark.network.crypto.enabled=true"} <= set(master)
    assert driver_host == ("127.0.0.1", "127.0.0.1")  # on the route to the node, which is this host's loopback
    assert idle_slurm.jobs() == []  # released by stop, not by a time limit


INSIDE = """
    import os, subprocess
    from orca_core import init_orca_context
    from orca_core.ports import outward_address

    def steps():
        out = subprocess.run(["squeue", "--noheader", "--steps", "--jobs", os.environ["SLURM_JOB_ID"], "--format",
                              "%i %j"], capture_output=True, text=True, check=True).stdout
        return [line.replace(" ", "=") for line in out.splitlines() if line.strip()]

    sc = init_orca_context("slurm", cores=1, memory="1g", num_nodes=1, driver_host=outward_address())
    ran = sc.parallelize(range(2), 2).map(lambda _: os.environ["SLURM_JOB_ID"]).distinct().collect()
    print("RAN", os.environ["SLURM_JOB_ID"], ran, flush=True)
    conf = sc.getConf()
    print("DRIVER", outward_address(), conf.get("spark.driver.host"), conf.get("spark.driver.bindAddress"), flush=True)
    print("STEPS", *steps(), flush=True)
    stop_orca_context()
    print("STEPS", *steps(), flush=True)
    left = subprocess.run(["squeue", "--noheader", "--format", "%i %T"], capture_output=True, text=True).stdout
    print("AFTER", left.split(), flush=True)
"""


def test_inside_an_allocation_it_uses_that_job_and_leaves_it_to_its_owner(idle_slurm, tmp_path):
    driver = write_driver(tmp_path, INSIDE)
    out = subprocess.run(["salloc", "--nodes=1", "--cpus-per-task=1", "--mem=3000M", *driver, "exit"],
                         capture_output=True, text=True, timeout=300, env=idle_slurm.env)
    assert out.returncode == 0, out.stderr[-3000:]
    ran = next(line for line in out.stdout.splitlines() if line.startswith("RAN")).split(maxsplit=2)
    after = next(line for line in out.stdout.splitlines() if line.startswith("AFTER"))
    assert ran[2] == repr([ran[1]])  # the executors ran in the job salloc gave the driver
    (given, host, bind) = next(line for line in out.stdout.splitlines() if line.startswith("DRIVER")).split()[1:]
    assert (host, bind) == (given, "0.0.0.0")  # driver_host, not the address on the route to the master's node
    during, left = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("STEPS")]
    assert len(during) == 2 and all(step.startswith(f"{ran[1]}.") and "=orca-spark-" in step for step in during)
    assert left == []  # no step of Orca's is left in the user's allocation
    assert after == f"AFTER {[ran[1], 'RUNNING']}"  # stop released nothing it did not request
    wait_for(lambda: not idle_slurm.jobs(), 30, "salloc to release its job")


KILLED = """
    from orca_core import init_orca_context
    init_orca_context("slurm", cores=1, memory="1g", num_nodes=1)
"""


def test_kill_9_of_the_driver_cancels_the_job_and_its_steps(idle_slurm, tmp_path, marked_env):
    driver = write_driver(tmp_path, KILLED)
    workdirs = os.path.join(tempfile.gettempdir(), "orca-slurm-*")
    before = set(glob.glob(workdirs))
    assert_kill_9_leaves_nothing(driver, marked_env, running=("salloc", "srun", "deploy.master.Master",
                                                              "deploy.worker.Worker"), within=30)
    wait_for(lambda: not idle_slurm.jobs(), 30, "Slurm to end the job")
    assert idle_slurm.steps() == []
    wait_for(lambda: set(glob.glob(workdirs)) <= before, 10, "the driver's Slurm folder to be removed")


HOLD = "import os, sys; print(os.environ['SLURM_JOB_ID'], os.environ['SLURM_JOB_NODELIST'], flush=True); sys.stdin.read()"
INSIDE_KILLED = """
    from orca_core import init_orca_context
    init_orca_context("slurm", cores=1, memory="1g", num_nodes=1, driver_host="127.0.0.1")
"""


def test_kill_9_of_a_driver_inside_an_allocation_ends_its_steps_and_leaves_the_allocation(idle_slurm, tmp_path,
                                                                                          marked_env):
    holder = subprocess.Popen(["salloc", "--nodes=1", "--cpus-per-task=1", "--mem=3000M", "--job-name=users",
                               sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=idle_slurm.env)
    try:
        job, nodelist = holder.stdout.readline().split()
        marker, env = marked_env
        inside = (marker, {**env, "SLURM_JOB_ID": job, "SLURM_JOB_NODELIST": nodelist})  # as a shell of that salloc
        assert_kill_9_leaves_nothing(write_driver(tmp_path, INSIDE_KILLED), inside,
                                     running=("srun", "deploy.master.Master", "deploy.worker.Worker"), within=30)
        wait_for(lambda: idle_slurm.steps() == [], 30, "the steps the driver started to end with it")
        assert idle_slurm.jobs() == [f"{job} RUNNING"]  # the allocation is the user's: it stays
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    wait_for(lambda: not idle_slurm.jobs(), 30, "the user's allocation to end")


def test_plan_shows_the_salloc_srun_and_daemon_commands_and_the_driver_host(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"SlurmctldHost=ctl({outward_address()})\n")
    env = {**{k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}, "SLURM_CONF": str(conf)}
    out = subprocess.run(
        [sys.executable, "-m", "orca_core.cli", "plan", "--cluster-mode", "slurm", "--num-nodes", "3", "--cores", "4",
         "--memory", "8g", "--option", "partition=gpu", "--option", "time_limit=1:00:00"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert out.returncode == 0, out.stderr
    cluster = json.loads(out.stdout)["cluster"]
    assert cluster["salloc"] == ["salloc", "--nodes=3", "--ntasks-per-node=1", "--cpus-per-task=4",
                                 f"--mem={8192 + 819}M", "--job-name=orca", "--partition=gpu", "--time=1:00:00"]
    assert cluster["worker_step"][:2] == ["srun", "--jobid={job}"] and "--export=ALL" in cluster["worker_step"]
    assert cluster["driver_host"] == outward_address()  # on the route to the controller of slurm.conf
    master, worker = cluster["master_command"], cluster["worker_command"]
    assert master[0].endswith("bin/spark-class") and master[1:] == [
        "org.apache.spark.deploy.master.Master", "--host", "{first node's address}", "--port", "0", "--webui-port", "0"]
    assert worker[1:6] == ["org.apache.spark.deploy.worker.Worker", "--host", "{node's address}", "--cores", "4"]
    assert worker[6:8] == ["--memory", "8192m"] and worker[-1] == "{master URL}"
    assert cluster["daemon_env"]["SPARK_DAEMON_JAVA_OPTS"] == "-Dspark.authenticate=true"
