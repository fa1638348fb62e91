"""At init, every executor starts the shipped environment from its host's cache, so that a node
that cannot (its cache not writable, the disk full while unpacking, a layer missing) fails
`init_orca_context` with the launcher's reason instead of the program's first job.

    if probe.needed(plan):
        probe.check_executors(sc, plan)   # NodeEnvironmentError naming each executor that failed

The check is one barrier job of one task per task slot: Spark launches its tasks together, so each
slot of every registered executor gets one, and the first failure ends the job (no retries).
pyspark keeps the Python workers it started, so the program's first job reuses them.
`failure` reads the same reasons from a failed job of Ray-on-Spark nodes, which start the
environment on every slot at init themselves (then no check runs).
"""

from __future__ import annotations

import re
import sys

from orca_core.errors import NodeEnvironmentError
from orca_core.plan import LaunchPlan
from orca_core.ports import wait_for

GROUP = "orca-node-envs"
WORKER_ERROR = "Error from python worker:"  # what Spark puts before the stderr of a Python worker that failed
LAST_LINES = 5
STORE_WAIT = 10.0  # seconds for Spark's status store to record the job's tasks
_LOST = re.compile(r"\((\S+) executor (\S+)\)")  # "Lost task 0.3 in stage 1.0 (TID 8) (host executor 1)"


def needed(plan: LaunchPlan) -> bool:
    """Whether init checks the executors: the environment runs from the nodes' cache, executors are
    fixed (with dynamic allocation they come and go, and start it at their first task), and no
    Ray-on-Spark barrier job at init puts a node on every task slot."""
    from orca_core.settings import OrcaContext

    env, conf, ray = plan.python_env, plan.spark_conf, plan.ray
    if plan.spark != "launch" or env is None or not env.launcher:
        return False
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return False
    if ray is None or ray.kind != "on-spark" or ray.max_nodes is not None or not OrcaContext.barrier_mode:
        return True
    slots = int(conf.get("spark.executor.cores", "1")) // int(conf.get("spark.task.cpus", "1"))
    return ray.num_nodes < ray.spark_executors * slots


def check_executors(sc, plan: LaunchPlan) -> set[str]:
    """Start the environment on every task slot of the registered executors; the executors reached.

    Waits for the plan's `spark.executor.instances` executors as long as Spark waits before
    scheduling (`spark.scheduler.maxRegisteredResourcesWaitingTime`, 30 s by default). Coverage is
    best effort: executors registering later are not checked (a line on stderr says how many were),
    and start the environment at their first task, failing it with the same reason.
    """
    from py4j.protocol import Py4JJavaError

    jsc = sc._jsc.sc()
    expected = int(plan.spark_conf.get("spark.executor.instances", "1"))
    patience = jsc.conf().getTimeAsSeconds("spark.scheduler.maxRegisteredResourcesWaitingTime", "30s")
    try:
        wait_for(lambda: len(_executors(jsc)) >= expected, patience, f"{expected} Spark executor(s) to register")
    except TimeoutError:
        pass
    registered = _executors(jsc)
    if not registered:
        print(f"Orca: no Spark executor registered within {patience}s, so none started the shipped Python "
              "environment at init: the first job starts it", file=sys.stderr, flush=True)
        return set()
    slots = jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().defaultResourceProfile())
    sc.setJobGroup(GROUP, "Orca: start the shipped Python environment on every executor")
    try:
        sc.parallelize(range(slots), slots).barrier().mapPartitions(lambda _: [0]).collect()
    except Py4JJavaError as error:
        raise failure(sc, GROUP, error, launcher_only=False) from None
    finally:
        for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            sc.setLocalProperty(key, None)
    reached = {a[0] for a in _attempts(sc, GROUP, lambda found: _succeeded(found) >= slots) if a[2] == "SUCCESS"}
    if len(reached) < expected:
        print(f"Orca: {len(reached)} of {expected} Spark executor(s) started the shipped Python environment at "
              "init; the others start it at their first task", file=sys.stderr, flush=True)
    return reached


def failure(sc, group: str, error: Exception, launcher_only: bool = True) -> NodeEnvironmentError | None:
    """What failed job `error` of job group `group` says of the executors whose Python did not start:
    each executor, its host and the launcher's lines ("orca: ..."). None if no launcher line is in it
    (unless not `launcher_only`: then what the executors' Python wrote, or the job's error)."""
    if launcher_only and not launcher_lines(str(error)):
        return None
    failed = {}
    for executor, host, status, text in _attempts(sc, group, _ended):
        if status == "FAILED" and text and not failed.get(f"executor {executor} on {host}"):
            failed[f"executor {executor} on {host}"] = _reason(text, launcher_only) or \
                (None if launcher_only else text.splitlines()[0])
    failed = {where: reason for where, reason in failed.items() if reason}
    if not failed:  # the status store has not recorded them: what the error says
        from orca_core.engines.spark import root_cause

        text = str(error)
        reason = _reason(text, launcher_only) or (None if launcher_only else root_cause(error))
        if reason is None:
            return None
        lost = _LOST.search(text)
        failed = {f"executor {lost.group(2)} on {lost.group(1)}" if lost else "an executor": reason}
    lines = [f"{where}: {reason}" for where, reason in sorted(failed.items())]
    if len(lines) == 1:
        return NodeEnvironmentError(f"the shipped Python environment cannot start on {lines[0]}")
    return NodeEnvironmentError(f"the shipped Python environment cannot start on {len(lines)} executors:\n  "
                                + "\n  ".join(lines))


def launcher_lines(text: str) -> list[str]:
    """The launcher's lines ("orca: ...") in what Spark reports of a Python worker that did not start."""
    return [line for line in _worker_lines(text) if line.startswith("orca: ")]


def _reason(text: str, launcher_only: bool) -> str | None:
    lines = launcher_lines(text) or ([] if launcher_only else _worker_lines(text)[-LAST_LINES:])
    return "\n    ".join(lines) or None


def _worker_lines(text: str) -> list[str]:
    if WORKER_ERROR not in text:
        return []
    block = text.split(WORKER_ERROR, 1)[1].split("PYTHONPATH was:", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def _executors(jsc) -> list[str]:
    ids = jsc.getExecutorIds().mkString("\n")
    return ids.split("\n") if ids else []


def _succeeded(found) -> int:
    return sum(1 for a in found if a[2] == "SUCCESS")


def _ended(found) -> bool:
    """Whether a failed job's attempts are all recorded: one failed with an error, none runs."""
    return any(a[3] for a in found) and not any(a[2] == "RUNNING" for a in found)


def _attempts(sc, group: str, complete) -> list[tuple[str, str, str, str | None]]:
    """(executor, host, status, error) of every task attempt of the jobs of `group`, as Spark's status
    store records them (a listener, behind the scheduler): once `complete(attempts)`, or after STORE_WAIT."""
    from py4j.protocol import Py4JError

    def read():
        tracker, store, found = sc.statusTracker(), sc._jsc.sc().statusStore(), []
        for job in tracker.getJobIdsForGroup(group):
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info is not None else ():
                stage_info = tracker.getStageInfo(stage)
                if stage_info is None:
                    continue
                tasks = store.taskList(stage, stage_info.currentAttemptId, 2**31 - 1)
                for i in range(tasks.length()):
                    task = tasks.apply(i)
                    error = task.errorMessage()
                    found.append((task.executorId(), task.host(), task.status(),
                                  error.get() if error.isDefined() else None))
        return found

    last = []

    def done():
        last[:] = read()
        return complete(last)

    try:
        wait_for(done, STORE_WAIT, "Spark's status store to record the job's tasks")
    except (TimeoutError, Py4JError, AttributeError):  # the SparkContext may be stopping
        pass
    return last


__all__ = ["check_executors", "failure", "launcher_lines", "needed"]
