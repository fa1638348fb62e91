"""The base class of every cluster-mode backend, and the request it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orca_core.errors import ConfigError, ConfigTypeError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.records import Option
from orca_core.resources import Resources, parse_memory


@dataclass(frozen=True)
class Request:
    """A validated `init_orca_context` call."""

    cluster_mode: str
    resources: Resources
    init_ray_on_spark: bool = False
    runtime: str = "spark"
    py_files: tuple[str, ...] = ()
    conf: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    app_name: str = "orca"


class ClusterBackend:
    """Runs one cluster mode.

    Orca builds the backend of the selected mode from a validated `Request`, asks it for a
    `LaunchPlan` (pure data, no side effects), then calls `start(plan)` to bring up whatever
    the engines need (daemons, uploads), starts Spark and Ray from the plan `start` returned
    (or the same plan), and calls `stop()` after the engines have stopped. `stop()` must be
    idempotent. A backend that connects Ray to a token-protected cluster sets `ray_auth_token`.
    """

    ray_auth_token: str | None = None

    def __init__(self, request: Request):
        self.request = request

    @property
    def options(self) -> dict[str, Any]:
        return self.request.options

    def plan(self) -> LaunchPlan:
        raise NotImplementedError

    def start(self, plan: LaunchPlan) -> LaunchPlan | None:
        """Bring up what the plan needs; return the plan to run if starting changed it (a master URL)."""

    def stop(self) -> None:
        """Release what `start` brought up; nothing by default."""


RAY_OPTIONS = (
    Option("object_store_memory", (int, str), help="object store size of each Ray node, e.g. '2g'"),
    Option("include_webui", bool, True, help="start the Ray dashboard"),
    Option("extra_params", dict, help="more `ray start` flags, e.g. {'max-worker-port': 20000}"),
    Option("env", dict, help="environment variables of the Ray nodes"),
)
RAY_ON_SPARK_OPTIONS = (
    Option("num_ray_nodes", int, help="Ray worker nodes (default: one per Spark executor)"),
    Option("ray_node_cpu_cores", int, help="CPUs of each Ray node (default: the executor's cores)"),
    *RAY_OPTIONS,
)
# `ray start` flags Orca sets itself, and the option to use instead.
_MANAGED_FLAGS = {
    "address": None, "head": None, "block": None, "port": None, "temp-dir": None, "node-ip-address": None,
    "num-cpus": "ray_node_cpu_cores", "object-store-memory": "object_store_memory",
    "include-dashboard": "include_webui", "num-gpus": None,
}


def ray_params(options: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], int | None]:
    """Validated `extra_params`, `env` and `object_store_memory` of a Ray option set."""
    params = {}
    for key, value in (options.get("extra_params") or {}).items():
        flag = str(key).replace("_", "-").lstrip("-")
        if flag in _MANAGED_FLAGS:
            instead = _MANAGED_FLAGS[flag]
            raise ConfigError(
                f"extra_params may not set --{flag}: Orca sets it" + (f"; use the option {instead}" if instead else "")
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigTypeError(f"extra_params[{key!r}] must be a string or a number, got {value!r}")
        params[flag] = str(value)
    env = options.get("env") or {}
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigTypeError(f"env[{key!r}] = {value!r}: environment keys and values must be strings")
    size = options.get("object_store_memory")
    return params, dict(env), parse_memory(size, "object_store_memory") if size is not None else None


def ray_on_spark_plan(request: Request, executors: int, executor_cores: int) -> RayPlan | None:
    """The RayPlan of a Spark-based mode: one Ray node per executor unless the options say otherwise."""
    if not request.init_ray_on_spark:
        return None
    options = request.options
    nodes = options.get("num_ray_nodes") or executors
    cpus = options.get("ray_node_cpu_cores") or executor_cores
    if nodes < 1 or nodes > executors:
        raise ConfigError(f"num_ray_nodes={nodes}, but Spark has {executors} executor(s): ask for 1 to {executors}")
    if cpus < 1 or cpus > executor_cores:
        raise ConfigError(
            f"ray_node_cpu_cores={cpus}, but each executor has {executor_cores} core(s): ask for 1 to {executor_cores}"
        )
    params, env, size = ray_params(options)
    return RayPlan(
        kind="on-spark", num_nodes=nodes, spark_executors=executors, cpus_per_node=cpus,
        object_store_memory=size, include_dashboard=options.get("include_webui", True), params=params, env=env,
    )
