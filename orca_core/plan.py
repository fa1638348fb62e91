"""The LaunchPlan: everything a backend decided, as pure data, before anything starts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

UNPACKED = "python_env"  # where every node unpacks the shipped environment


@dataclass(frozen=True)
class RayPlan:
    """How Ray comes up: "local" (a head on this machine), "on-spark" (`num_nodes` nodes inside
    the `spark_executors` executors of the application) or "attach" (a cluster at `address`).
    `heap_memory` and `object_store_memory` size each node (None: Ray's defaults). With `max_nodes`
    the cluster autoscales between `num_nodes` and `max_nodes` nodes, ending those idle for
    `idle_timeout` seconds."""

    kind: str
    num_nodes: int = 1
    max_nodes: int | None = None
    idle_timeout: float = 60.0
    spark_executors: int = 0
    cpus_per_node: int = 1
    gpus_per_node: int = 0
    heap_memory: int | None = None
    object_store_memory: int | None = None
    address: str | None = None
    include_dashboard: bool = True
    params: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShippedEnv:
    """The Python environment the executors run, unpacked as ./python_env on every node, or once
    per host into the nodes' cache of environments (`launcher`, see orca_core.shipping.nodecache).

    `archive` is what Spark ships (a local path or a cluster URI). `local` is the archive on this
    machine, which `start` packs (when `key` is set: Orca packs it, once per content key) or
    uploads; None for an archive that is on the cluster already. `packing` holds the arguments
    of `orca_core.shipping.pack_environment`. A layered environment's `local` is its manifest,
    and `layers` its archives (see orca_core.shipping.layers).
    """

    archive: str
    local: str | None
    key: str | None = None
    python: str = "bin/python"
    packing: dict[str, Any] = field(default_factory=dict)
    launcher: str | None = None  # set when executors run it from their host's cache of unpacked environments
    layers: tuple[str, ...] = ()

    @property
    def executor_python(self) -> str:
        return self.launcher or f"./{UNPACKED}/{self.python}"


@dataclass(frozen=True)
class LaunchPlan:
    """Master, Spark conf, environment, archives, py-files and submit argv of one context.

    `spark` is "launch" (start a driver JVM here), "attach" (use the SparkContext of this
    program: spark-submit's, or one already running) or None (no Spark). `python_env` is the environment that
    ships; `cluster` holds what a mode's `start` needs beyond that (JSON-able data).
    """

    cluster_mode: str
    master: str | None
    spark: str | None = "launch"
    deploy_mode: str = "client"
    spark_conf: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    archives: tuple[str, ...] = ()
    py_files: tuple[str, ...] = ()
    submit_argv: tuple[str, ...] | None = None
    ray: RayPlan | None = None
    python_env: ShippedEnv | None = None
    cluster: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
