"""Ray on Spark: a 0-CPU head on the driver, one worker node per Spark task on the executors.

The head starts while Spark starts. Once Spark is up, one job launches the nodes: as a barrier
stage (`OrcaContext.barrier_mode`, all or nothing) or as plain tasks whose cached results pin
their executors against dynamic allocation's idle timeout. Nodes with GPUs start in tasks of a
resource profile that asks Spark for them, and use the addresses Spark assigned. With
`max_nodes` an `Autoscaler` starts and ends nodes instead (see `orca_core.engines.ray_autoscaler`).
Each node is bounded by its executor's JVM and by the driver's control server (see
`orca_core.engines.control`).
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import Future

from orca_core.engines.control import ControlServer
from orca_core.engines.ray import LocalRay, RayContext, auth_env
from orca_core.engines.ray_node import NodeSpec
from orca_core.engines.spark import root_cause
from orca_core.errors import LaunchError
from orca_core.plan import RayPlan
from orca_core.ports import wait_for

JOB_GROUP = "orca-ray-nodes"


class RayOnSpark:
    """The Ray cluster of a Spark application."""

    def __init__(self, plan: RayPlan, workdir: str, host: str):
        self.plan = plan
        self.host = host
        self.head = LocalRay(plan, workdir, host=host, num_cpus=0)
        self.control: ControlServer | None = None
        self.nodes: list[dict] = []
        self._pinned = None
        self._sc = None
        self._starting: Future | None = None
        self.autoscaler = None

    def launch(self) -> None:
        """Start the head (runs while Spark starts)."""
        self.head.launch()

    def spark_ready(self, sc) -> None:
        """Launch the worker nodes now, while the head may still be starting: they wait for its GCS."""
        _warn_unless_authenticated(sc)
        self._sc = sc
        self.control = ControlServer(self.host)
        self._starting = Future()
        threading.Thread(target=self._start_nodes_into, args=(self._starting,), name="orca-ray-nodes",
                         daemon=True).start()

    def connect(self, log_to_driver: bool = True, spark_context=None) -> RayContext:
        """Connect this process as a driver once the worker nodes have joined."""
        import ray

        if self._starting is None:
            self.spark_ready(spark_context)
        context = self.head.connect(log_to_driver=log_to_driver)
        context._owner = self
        progress = _Progress(self.plan.num_nodes)
        try:
            self.nodes = self._starting.result()
            expected = self.plan.num_nodes + 1
            wait_for(lambda: _alive() >= expected or self._failed(), 60, f"{self.plan.num_nodes} Ray nodes to register")
            if self._failed():
                raise LaunchError(f"Ray nodes failed to start on the executors: {self.autoscaler.errors[0]}")
        finally:
            progress.done()
        if self.autoscaler is not None:
            self.autoscaler.start(self.head.address)
        context.num_nodes = _alive()
        context.resources = ray.cluster_resources()
        return context

    def _failed(self) -> bool:
        return self.autoscaler is not None and bool(self.autoscaler.errors)

    def _start_nodes_into(self, future: Future) -> None:
        try:
            future.set_result(self._start_nodes(self._sc))
        except BaseException as error:
            future.set_exception(error)

    def _start_nodes(self, sc) -> list[dict]:
        from orca_core.engines import ray_node
        from orca_core.settings import OrcaContext

        n = self.plan.num_nodes
        spec = NodeSpec(
            head=self.head.address,
            control=self.control.address,
            env={**self.plan.env, **auth_env(self.head.token), "ORCA_CONTROL_SECRET": self.control.secret},
            num_cpus=self.plan.cpus_per_node,
            num_gpus=self.plan.gpus_per_node,
            memory=self.plan.heap_memory,
            object_store_memory=self.plan.object_store_memory,
            params=dict(self.plan.params),
        )
        if self.plan.max_nodes is not None:
            return self._autoscale(sc, spec)
        barrier = OrcaContext.barrier_mode
        profile = _node_profile(sc, self.plan.gpus_per_node)
        rdd = sc.parallelize(range(n), n)  # before the executors are up: the first parallelize takes a while
        if profile is not None:
            rdd = rdd.withResources(profile)
        if barrier:
            _wait_for_slots(sc, n, self.plan.spark_executors, profile)
        else:
            _wait_for_an_executor(sc, self.plan.spark_executors)
        sc.setJobGroup(JOB_GROUP, f"Orca: start {n} Ray node(s)", interruptOnCancel=True)
        try:
            if barrier:
                return rdd.barrier().mapPartitionsWithIndex(lambda i, _: [_barrier_start(spec, i)]).collect()
            pinned = rdd.mapPartitionsWithIndex(lambda i, _: [ray_node.start(spec, i)]).persist()
            self._pinned = pinned  # cached blocks keep these executors from idling out
            return pinned.collect()
        except Exception as error:
            from orca_core.shipping.probe import failure

            raise failure(sc, JOB_GROUP, error) or \
                LaunchError(f"Ray nodes failed to start on the executors: {root_cause(error)}") from error

    def _autoscale(self, sc, spec: NodeSpec) -> list[dict]:
        """Start the `num_nodes` nodes that always run under an autoscaler, which `connect` sets watching."""
        from orca_core.engines.ray_autoscaler import Autoscaler

        plan = self.plan
        unbounded = float("inf")
        shape = {"CPU": plan.cpus_per_node, "GPU": plan.gpus_per_node, "memory": plan.heap_memory or unbounded,
                 "object_store_memory": plan.object_store_memory or unbounded}
        self.autoscaler = Autoscaler(sc, spec, shape, plan.num_nodes, plan.max_nodes, plan.idle_timeout,
                                     _node_profile(sc, plan.gpus_per_node, plan.cpus_per_node), self.control.retire)
        self.autoscaler.launch(plan.num_nodes)
        return []

    def stop(self) -> None:
        """Disconnect, end every node's lease and wait for it, stop the head; idempotent."""
        self.head.disconnect()
        if self.autoscaler is not None:
            self.autoscaler.halt()
        if self._starting is not None and not self._starting.done():
            try:
                self._sc.cancelJobGroup(JOB_GROUP)
            except Exception:  # Spark may already be gone
                pass
        control, self.control = self.control, None
        if control is not None:  # first: from here on a node that ends is no death
            left = control.close()
            if left:
                print(f"Orca: {left} Ray node(s) did not confirm their stop", file=sys.stderr)
        autoscaler, self.autoscaler = self.autoscaler, None
        if autoscaler is not None:
            autoscaler.stop()
        pinned, self._pinned = self._pinned, None
        if pinned is not None:
            try:
                pinned.unpersist()
            except Exception:  # Spark may already be gone
                pass
        self.head.stop()


def _barrier_start(spec: NodeSpec, index: int) -> dict:
    """Start a node, then agree with every other task at the driver's gate: all started, or all stop and fail."""
    from pyspark import BarrierTaskContext

    from orca_core.engines import ray_node
    from orca_core.engines.control import agree

    task = BarrierTaskContext.get()
    try:
        info, error = ray_node.start(spec, index), ""
    except Exception as exc:
        info, error = None, str(exc) or type(exc).__name__
    try:
        # Spark never retries a failed barrier result stage: its id names the gate of this one start
        verdict = agree(spec.control, spec.env["ORCA_CONTROL_SECRET"], str(task.stageId()), len(task.getTaskInfos()),
                        error or "ok", spec.timeout + 30)
    except Exception as exc:
        verdict = str(exc)
    if verdict != "ok":
        if info is not None:
            import os
            import signal

            os.kill(info["supervisor"], signal.SIGTERM)
        raise RuntimeError(verdict)
    return info


def _alive() -> int:
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


def _warn_unless_authenticated(sc) -> None:
    """The Ray token and the control secret reach the nodes inside the task that starts them, over
    Spark's RPC and block transfers: say so when this application does not authenticate those."""
    from orca_core.spark_security import AUTHENTICATE, authenticated

    if not authenticated({AUTHENTICATE: sc.getConf().get(AUTHENTICATE, "false")}):
        print(f"Orca: this Spark application does not authenticate ({AUTHENTICATE} is off), so the Ray token "
              "and the control secret reach the Ray nodes in a task that whoever reaches the executors can read: "
              f"set {AUTHENTICATE}=true (and spark.network.crypto.enabled) where the cluster allows it",
              file=sys.stderr, flush=True)


def _node_profile(sc, gpus: int, cpus: int | None = None):
    """The resource profile of tasks that start Ray nodes of `gpus` GPUs and hold `cpus` cores (None:
    Spark's default profile will do). Spark assigns each such task its own GPU addresses; other
    Spark tasks ask for none."""
    task_cpus = int(sc.getConf().get("spark.task.cpus", "1"))
    if not gpus and cpus in (None, task_cpus):
        return None
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    requests = TaskResourceRequests().cpus(cpus or task_cpus)
    if gpus:
        requests = requests.resource("gpu", gpus)
    return ResourceProfileBuilder().require(requests).build


def _wait_for_slots(sc, needed: int, expected: int, profile=None) -> None:
    """Barrier stages need every task slot at once: fail fast, with a reason, if there are too few.

    Executors get as long to register as Spark itself gives them before scheduling
    (`spark.scheduler.maxRegisteredResourcesWaitingTime`, 30 s by default)."""
    jsc = sc._jsc.sc()
    if jsc.conf().getBoolean("spark.dynamicAllocation.enabled", False):
        raise LaunchError(
            "OrcaContext.barrier_mode=True cannot start Ray nodes with Spark dynamic allocation "
            "(Spark runs no barrier stage then): set OrcaContext.barrier_mode = False"
        )
    task_cpus = int(jsc.conf().get("spark.task.cpus", "1"))
    patience = jsc.conf().getTimeAsSeconds("spark.scheduler.maxRegisteredResourcesWaitingTime", "30s")

    def executors() -> int:
        return len(jsc.statusTracker().getExecutorInfos()) - 1

    try:
        wait_for(lambda: executors() >= expected, patience, f"{expected} Spark executor(s) to register")
    except TimeoutError:
        pass
    have = _slots(jsc, task_cpus, profile)
    if have < needed:
        raise LaunchError(
            f"barrier mode starts {needed} Ray node(s) at once but Spark has {have} free task slot(s)"
            f"{' with the GPUs a node asks for' if profile is not None else ''} "
            f"({executors()} of {expected} executor(s) registered within {patience}s): lower num_ray_nodes, "
            "free or add cluster resources, or set OrcaContext.barrier_mode = False"
        )


def _wait_for_an_executor(sc, expected: int) -> None:
    """Plain tasks wait for executors forever: fail, with a reason, if none registers in Spark's patience.

    Executors that cannot launch (a bad `spark.executor.extraJavaOptions`, a dead worker) are
    otherwise relaunched without end while the job that starts the Ray nodes waits."""
    jsc = sc._jsc.sc()
    if jsc.conf().getBoolean("spark.dynamicAllocation.enabled", False):
        return  # executors come when tasks wait for them
    patience = jsc.conf().getTimeAsSeconds("spark.scheduler.maxRegisteredResourcesWaitingTime", "30s")
    try:
        wait_for(lambda: len(jsc.statusTracker().getExecutorInfos()) > 1, patience, "a Spark executor to register",
                 interval=0.25)
    except TimeoutError:
        raise LaunchError(
            f"no Spark executor (of {expected}) registered within {patience}s, so no Ray node can start: the "
            "executors fail to launch (see their stderr in the Spark workers' work directories) or the cluster "
            "has no free resources; raise spark.scheduler.maxRegisteredResourcesWaitingTime to wait longer"
        ) from None


def _slots(jsc, task_cpus: int, profile=None) -> int:
    """Task slots of the registered executors for `profile`'s tasks (Spark's own count when it exposes it)."""
    from py4j.protocol import Py4JError

    try:
        java = profile._java_resource_profile if profile is not None else \
            jsc.resourceProfileManager().defaultResourceProfile()
        return jsc.maxNumConcurrentTasks(java)
    except Py4JError:
        cores = int(jsc.conf().get("spark.executor.cores", "1"))
        return (len(jsc.statusTracker().getExecutorInfos()) - 1) * cores // task_cpus


class _Progress:
    """Prints "Ray nodes ready k/n" to stderr as nodes join, from a background thread."""

    def __init__(self, total: int):
        self.total = total
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orca-ray-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        shown = -1
        while not self._stop.wait(0.5):
            ready = max(0, _alive() - 1)
            if ready != shown:
                shown = ready
                print(f"Orca: Ray nodes ready {ready}/{self.total}", file=sys.stderr, flush=True)

    def done(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
