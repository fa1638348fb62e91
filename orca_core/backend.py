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
IDLE_TIMEOUT = 60.0
RAY_ON_SPARK_OPTIONS = (
    Option("num_ray_nodes", int, help="Ray worker nodes (default: one per Spark executor)"),
    Option("ray_node_cpu_cores", int, help="CPUs of each Ray node (default: the executor's cores)"),
    Option("ray_node_gpus", int, 0, help="GPUs of each Ray node, assigned by Spark as task resources"),
    Option("ray_node_memory", (int, str), help="heap memory of each Ray node (Ray's `memory` resource), e.g. '2g'"),
    Option("max_ray_nodes", int, help="autoscale: add Ray nodes, up to this many, while tasks or actors wait"),
    Option("min_ray_nodes", int, help="autoscale: the Ray nodes that always run (default 0)"),
    Option("ray_node_idle_timeout", (int, float), help="autoscale: seconds a Ray node above min_ray_nodes "
           f"may idle before it stops (default {IDLE_TIMEOUT:g})"),
    *RAY_OPTIONS,
)
EXECUTOR_GPU = "spark.executor.resource.gpu"
WORKER_GPU = "spark.worker.resource.gpu"
WORKER_FILE = "spark.worker.resourcesFile"
# `ray start` flags Orca sets itself, and the option to use instead.
_MANAGED_FLAGS = {
    "address": None, "head": None, "block": None, "port": None, "temp-dir": None, "node-ip-address": None,
    "num-cpus": "ray_node_cpu_cores", "object-store-memory": "object_store_memory",
    "include-dashboard": "include_webui", "num-gpus": "ray_node_gpus", "memory": "ray_node_memory",
}


MAX_EXECUTORS = "spark.dynamicAllocation.maxExecutors"
INITIAL_EXECUTORS = "spark.dynamicAllocation.initialExecutors"


def dynamic_allocation(conf: dict[str, str]) -> bool:
    """Whether `conf` turns on Spark dynamic allocation."""
    return conf.get("spark.dynamicAllocation.enabled", "false").strip().lower() == "true"


def max_executors(conf: dict[str, str]) -> int | None:
    """`spark.dynamicAllocation.maxExecutors` of `conf`, or None when it sets none."""
    given = conf.get(MAX_EXECUTORS)
    if given is None:
        return None
    try:
        return int(given)
    except ValueError:
        raise ConfigError(f"conf {MAX_EXECUTORS}={given!r} is not a whole number of executors") from None


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


def ray_on_spark_plan(request: Request, executors: int, executor_cores: int, room: int, room_name: str,
                      fill_store: bool = False) -> RayPlan | None:
    """The RayPlan of a Spark-based mode: one Ray node per executor unless the options say otherwise.

    `room` is the memory a Ray node may take beside its executor (`room_name` says where it comes
    from); heap and object store together must fit in it. With `fill_store` the object store
    defaults to the room the heap leaves."""
    if not request.init_ray_on_spark:
        return None
    options = request.options
    cpus = options.get("ray_node_cpu_cores") or executor_cores
    gpus = options.get("ray_node_gpus") or 0
    if cpus < 1 or cpus > executor_cores:
        raise ConfigError(
            f"ray_node_cpu_cores={cpus}, but each executor has {executor_cores} core(s): ask for 1 to {executor_cores}"
        )
    nodes, most, idle = _node_counts(request, executors, executor_cores // cpus)
    if gpus < 0:
        raise ConfigError(f"ray_node_gpus={gpus}: ask for 0 or more GPUs per Ray node")
    params, env, size = ray_params(options)
    heap = options.get("ray_node_memory")
    heap = parse_memory(heap, "ray_node_memory") if heap is not None else None
    if fill_store and size is None:
        size = room - (heap or 0)
    if (heap or 0) + (size or 0) > room or (size is not None and size <= 0):
        asked = [f"{n >> 20} MiB of {what}" for n, what in ((heap, "heap (ray_node_memory)"),
                                                             (size, "object store (object_store_memory)")) if n]
        raise ConfigError(
            f"each Ray node would take {' and '.join(asked) or 'no memory'}, but {room_name} is {room >> 20} MiB: "
            "lower ray_node_memory or object_store_memory, or give the executors more memory"
        )
    return RayPlan(
        kind="on-spark", num_nodes=nodes, max_nodes=most, idle_timeout=idle, spark_executors=executors,
        cpus_per_node=cpus, gpus_per_node=gpus,
        heap_memory=heap, object_store_memory=size, include_dashboard=options.get("include_webui", True),
        params=params, env=env,
    )


def _node_counts(request: Request, executors: int, per_executor: int) -> tuple[int, int | None, float]:
    """(nodes to start, the most to autoscale to or None for a fixed size, idle timeout)."""
    options = request.options
    most, least, idle = options.get("max_ray_nodes"), options.get("min_ray_nodes"), options.get("ray_node_idle_timeout")
    if most is None:
        given = [name for name, value in (("min_ray_nodes", least), ("ray_node_idle_timeout", idle)) if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} configure autoscaling, which max_ray_nodes turns on: pass max_ray_nodes")
        nodes = options.get("num_ray_nodes") or executors
        if nodes < 1 or nodes > executors:
            raise ConfigError(f"num_ray_nodes={nodes}, but Spark has {executors} executor(s): ask for 1 to {executors}")
        return nodes, None, IDLE_TIMEOUT
    if options.get("num_ray_nodes") is not None:
        raise ConfigError("num_ray_nodes fixes the number of Ray nodes and max_ray_nodes lets it vary: pass one of them")
    least = least or 0
    conf = request.conf
    if dynamic_allocation(conf):
        most_executors = max_executors(conf)
        limit = None if most_executors is None else most_executors * per_executor
    else:
        limit = executors * per_executor
    if not 0 <= least <= most or most < 1 or (limit is not None and most > limit):
        raise ConfigError(
            f"min_ray_nodes={least}, max_ray_nodes={most}: ask for 0 <= min_ray_nodes <= max_ray_nodes"
            + (f" <= {limit} (the Ray nodes Spark's executors hold at once)" if limit is not None else "")
        )
    if idle is not None and idle <= 0:
        raise ConfigError(f"ray_node_idle_timeout={idle}: give a number of seconds above 0")
    return least, most, IDLE_TIMEOUT if idle is None else float(idle)


def ray_gpu_conf(request: Request, finder: str | None) -> dict[str, str]:
    """Spark conf giving each executor the GPUs of a Ray node (the user's conf wins), checked against
    what that conf offers. `finder` is the prefix of the conf that discovers the GPUs: WORKER_GPU
    (local-cluster workers), EXECUTOR_GPU (executors that find their own, in containers), or None
    (a standalone cluster's workers, which assign them to executors)."""
    gpus = request.options.get("ray_node_gpus") or 0
    if not (request.init_ray_on_spark and gpus > 0):
        return {}
    conf = {f"{EXECUTOR_GPU}.amount": str(gpus), **request.conf}
    have = _gpu_amount(conf, EXECUTOR_GPU)
    if have < gpus:
        raise ConfigError(f"ray_node_gpus={gpus}, but each executor gets {have} GPU(s) ({EXECUTOR_GPU}.amount="
                          f"{conf[f'{EXECUTOR_GPU}.amount']}): ask for at most {have} or raise that amount")
    out = {f"{EXECUTOR_GPU}.amount": str(have)}
    if finder == WORKER_GPU:
        conf.setdefault(f"{WORKER_GPU}.amount", str(have))
        out[f"{WORKER_GPU}.amount"] = conf[f"{WORKER_GPU}.amount"]
        offered = _gpu_amount(conf, WORKER_GPU)
        if offered < have:
            raise ConfigError(f"each executor needs {have} GPU(s) for ray_node_gpus={gpus}, but each worker offers "
                              f"{offered} ({WORKER_GPU}.amount): lower ray_node_gpus or raise that amount")
    if finder and not (conf.get(f"{finder}.discoveryScript") or (finder == WORKER_GPU and conf.get(WORKER_FILE))):
        raise ConfigError(
            f"ray_node_gpus={gpus} needs Spark to find the GPUs: set conf {finder}.discoveryScript to a script "
            'that prints {"name": "gpu", "addresses": ["0", "1"]}'
        )
    return out


def _gpu_amount(conf: dict[str, str], prefix: str) -> int:
    value = conf[f"{prefix}.amount"]
    try:
        return int(value)
    except ValueError:
        raise ConfigTypeError(f"{prefix}.amount={value!r} must be a whole number of GPUs") from None
