"""Spark and Ray in an allocation of a real Slurm: where tasks run, and that nothing outlives the context."""

import glob
import os
import subprocess
import sys
import tempfile

from orca_core import init_orca_context, stop_orca_context
from orca_core.ports import wait_for
from orca_core.testing import assert_kill_9_leaves_nothing, write_driver


def test_spark_and_ray_tasks_run_in_the_allocation_it_requests_and_releases(idle_slurm):
    def where():  # local: pickled by value, not by this test module's name
        import os

        return tuple(os.environ.get(key) for key in ("SLURM_JOB_ID", "SLURMD_NODENAME", "SLURM_STEP_ID"))

    sc = init_orca_context("slurm", cores=1, memory="1g", num_nodes=1, init_ray_on_spark=True, include_webui=False)
    try:
        (job,) = [line.split()[0] for line in idle_slurm.jobs()]
        assert idle_slurm.jobs() == [f"{job} RUNNING"]
        spark = set(sc.parallelize(range(4), 2).map(lambda _: where()).collect())
        import ray

        ray_tasks = set(ray.get([ray.remote(where).remote() for _ in range(4)]))
        steps = idle_slurm.steps()
    finally:
        stop_orca_context()
    (spark_where,) = spark
    assert spark_where[:2] == (job, idle_slurm.node)  # the executor is a child of a worker step in the job
    (ray_where,) = ray_tasks
    assert ray_where[:2] == (job, idle_slurm.node)  # Ray nodes run inside the executors
    assert spark_where[2] in {s.split(".")[1] for s in steps}
    assert len(steps) == 2  # the master's step and the worker's
    assert idle_slurm.jobs() == []  # released by stop, not by a time limit


INSIDE = """
    import os, subprocess
    from orca_core import init_orca_context
    from orca_core.ports import outward_address
    sc = init_orca_context("slurm", cores=1, memory="1g", num_nodes=1, driver_host=outward_address())
    ran = sc.parallelize(range(2), 2).map(lambda _: os.environ["SLURM_JOB_ID"]).distinct().collect()
    print("RAN", os.environ["SLURM_JOB_ID"], ran, flush=True)
    conf = sc.getConf()
    print("DRIVER", outward_address(), conf.get("spark.driver.host"), conf.get("spark.driver.bindAddress"), flush=True)
    stop_orca_context()
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


def test_plan_shows_the_salloc_and_srun_commands(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "orca_core.cli", "plan", "--cluster-mode", "slurm", "--num-nodes", "3", "--cores", "4",
         "--memory", "8g", "--option", "partition=gpu", "--option", "time_limit=1:00:00"],
        capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"},
    )
    assert out.returncode == 0, out.stderr
    import json

    cluster = json.loads(out.stdout)["cluster"]
    assert cluster["salloc"] == ["salloc", "--nodes=3", "--ntasks-per-node=1", "--cpus-per-task=4",
                                 f"--mem={8192 + 819}M", "--job-name=orca", "--partition=gpu", "--time=1:00:00"]
    assert cluster["worker_step"][:2] == ["srun", "--jobid={job}"]
