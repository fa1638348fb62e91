"""The LaunchPlan: everything a backend decided, as pure data, before anything starts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class RayPlan:
    """How Ray comes up: "local" (a head on this machine), "on-spark" (`num_nodes` nodes inside
    the `spark_executors` executors of the application) or "attach" (a cluster at `address`)."""

    kind: str
    num_nodes: int = 1
    spark_executors: int = 0
    cpus_per_node: int = 1
    object_store_memory: int | None = None
    address: str | None = None
    include_dashboard: bool = True
    params: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchPlan:
    """Master, Spark conf, environment, archives, py-files and submit argv of one context.

    `spark` is "launch" (start a driver JVM here), "attach" (use the SparkContext of a
    program started by spark-submit) or None (no Spark).
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

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
