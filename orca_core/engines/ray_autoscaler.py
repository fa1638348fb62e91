"""Autoscaling Ray on Spark: Ray nodes come while work waits for resources, and go when idle.

Every node is a Spark job of one task (job group `orca-ray-node-K`) that holds its task slot
while the node runs, so Spark places each node on an executor with a free slot, dynamic
allocation may add an executor for it, and may release the executor once the node is gone.
The node is labelled `orca-node=K`. A driver thread reads the GCS every second: when tasks,
actors or placement groups wait for resources that a new node would have, it starts as many
nodes as the waiting work fills (up to `max_nodes`, counting those still starting; after a
node failed to start, none for RETRY seconds); a node
idle for `idle_timeout` seconds above `num_nodes` is drained (Ray then gives it no more work)
and its job cancelled: Spark kills the task's Python worker, whose pipe is the node
supervisor's stdin, and the supervisor stops the node. The control server's lease and the
executor watch hold as for every Ray-on-Spark node.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace

from orca_core.engines.ray_node import NodeSpec

LABEL = "orca-node"
JOB_GROUP = "orca-ray-node"
POLL = 1.0
RETRY = 10.0  # seconds without new nodes after one failed to start


class Autoscaler:
    """Starts and ends the Ray nodes of one Ray-on-Spark cluster between `least` and `most`."""

    def __init__(self, sc, spec: NodeSpec, shape: dict[str, float], least: int, most: int, idle_timeout: float,
                 profile=None, retire=lambda name: None):
        """`retire(name)` tells the control server that node `name` ("node-<key>") ends on purpose."""
        self.sc, self.spec, self.shape, self.profile, self.retire = sc, spec, shape, profile, retire
        self.least, self.most, self.idle_ms = least, most, idle_timeout * 1000
        self.launched = 0
        self.errors: list[str] = []
        self._retry_at = 0.0
        self._jobs: dict[str, threading.Thread] = {}
        self._ending: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def launch(self, count: int) -> None:
        """Start `count` more nodes, each as its own Spark job in its own thread."""
        for _ in range(count):
            with self._lock:
                key = str(self.launched)
                self.launched += 1
                thread = threading.Thread(target=self._run, args=(key,), name=f"orca-ray-node-{key}", daemon=True)
                self._jobs[key] = thread
            thread.start()

    def _run(self, key: str) -> None:
        from orca_core.engines import ray_node
        from orca_core.engines.spark import root_cause

        labels = ",".join(p for p in (self.spec.params.get("labels"), f"{LABEL}={key}") if p)
        spec = replace(self.spec, params={**self.spec.params, "labels": labels})
        index = int(key)
        rdd = self.sc.parallelize([index], 1)
        if self.profile is not None:
            rdd = rdd.withResources(self.profile)
        self.sc.setJobGroup(f"{JOB_GROUP}-{key}", f"Orca: Ray node {key}", interruptOnCancel=True)
        try:
            rdd.mapPartitions(lambda _: [ray_node.start(spec, index, hold=True)]).collect()
        except Exception as error:
            with self._lock:
                ended = key in self._ending or self._stop.is_set()
            if not ended:
                message = f"Ray node {key} failed: {root_cause(error)}"
                self.errors.append(message)
                self._retry_at = time.monotonic() + RETRY
                print(f"Orca: {message}", file=sys.stderr, flush=True)
        finally:
            with self._lock:
                self._jobs.pop(key, None)
                self._ending.discard(key)

    def running(self) -> int:
        """Nodes whose Spark job runs (starting, up, or ending)."""
        with self._lock:
            return len(self._jobs)

    def start(self, gcs_address: str) -> None:
        """Watch the cluster from a background thread until `stop`."""
        self._thread = threading.Thread(target=self._watch, args=(gcs_address,), name="orca-ray-autoscaler",
                                        daemon=True)
        self._thread.start()

    def _watch(self, gcs_address: str) -> None:
        from ray._raylet import GcsClient

        gcs = GcsClient(address=gcs_address)
        shown = ""
        while not self._stop.wait(POLL):
            try:
                self.step(gcs)
            except Exception as error:  # the GCS may be briefly unreachable; say so once per kind
                if str(error) != shown:
                    shown = str(error)
                    print(f"Orca: the Ray autoscaler could not read the cluster: {error}", file=sys.stderr)

    def step(self, gcs) -> None:
        """One round: end nodes idle too long, then start the nodes waiting work needs."""
        from ray.autoscaler.v2.sdk import get_cluster_resource_state
        from ray.core.generated.autoscaler_pb2 import DrainNodeReason, NodeStatus

        state = get_cluster_resource_state(gcs)
        up = {n.labels[LABEL]: n for n in state.node_states if LABEL in n.labels and n.status != NodeStatus.DEAD}
        with self._lock:
            jobs, ending = set(self._jobs), set(self._ending)
        staying = jobs - ending
        idle = sorted((k for k in staying if k in up and up[k].status == NodeStatus.IDLE
                       and up[k].idle_duration_ms >= self.idle_ms), key=int, reverse=True)
        for key in idle[:max(0, len(staying) - self.least)]:
            accepted, _ = gcs.drain_node(up[key].node_id.hex(), DrainNodeReason.DRAIN_NODE_REASON_IDLE_TERMINATION,
                                         f"idle for {up[key].idle_duration_ms / 1000:.0f}s", 0)
            if accepted:
                with self._lock:
                    self._ending.add(key)
                staying.discard(key)
                self.retire(f"node-{key}")
                self.sc.cancelJobGroup(f"{JOB_GROUP}-{key}")
        if time.monotonic() < self._retry_at:
            return
        starting = sum(1 for k in staying if k not in up)
        wanted = max(self.least - len(staying), nodes_for(demand(state), self.shape, starting))
        self.launch(max(0, min(wanted, self.most - len(jobs))))

    def halt(self) -> None:
        """Stop watching: no node starts or ends from here on."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def stop(self) -> None:
        """Stop watching and cancel every node's job (the control server's close ends the nodes first)."""
        self.halt()
        with self._lock:
            keys = list(self._jobs)
        for key in keys:
            try:
                self.sc.cancelJobGroup(f"{JOB_GROUP}-{key}")
            except Exception:  # Spark may already be gone
                pass


def demand(state) -> list[dict[str, float]]:
    """The resource bundles that wait in the cluster: tasks, actors and placement groups."""
    bundles = []
    for shape in state.pending_resource_requests:
        bundles += [dict(shape.request.resources_bundle)] * shape.count
    for gang in state.pending_gang_resource_requests:
        bundles += [dict(request.resources_bundle) for request in gang.requests]
    return bundles


def nodes_for(bundles: list[dict[str, float]], shape: dict[str, float], starting: int = 0) -> int:
    """How many new nodes of `shape` the `bundles` fill (first fit, largest first), beyond the room
    of `starting` nodes on their way. A bundle no such node could hold needs none."""
    free = [dict(shape) for _ in range(starting)]
    added = 0
    for bundle in sorted(bundles, key=lambda b: -sum(b.values())):
        if any(amount > shape.get(name, 0) for name, amount in bundle.items()):
            continue
        room = next((f for f in free if all(f.get(n, 0) >= a for n, a in bundle.items())), None)
        if room is None:
            room = dict(shape)
            free.append(room)
            added += 1
        for name, amount in bundle.items():
            room[name] -= amount
    return added
