"""BigDL 2.x Orca's context API on Orca: change `from bigdl.orca import ...` to this module.

    from orca_core.compat.bigdl import init_orca_context, stop_orca_context, OrcaContext

    sc = init_orca_context(cluster_mode="local", cores=4, memory="2g", init_ray_on_spark=True)
    ray_ctx = OrcaContext.get_ray_context()
    print(ray_ctx.address_info["object_store_address"], ray_ctx.redis_address)
    stop_orca_context()

Names, positional order and keyword arguments are BigDL's. Each BigDL keyword is mapped to its
Orca meaning, or accepted with one `BigDLCompatWarning` that names it and says why it has no
effect; a keyword BigDL did not know is an error naming the closest valid one. What becomes what:
docs/migrating-from-bigdl.md.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from orca_core import context as _core
from orca_core import state
from orca_core.errors import ConfigError, ConfigTypeError, NotRunning, closest
from orca_core.settings import OrcaContext as _OrcaContext

__all__ = [
    "BigDLCompatWarning",
    "OrcaContext",
    "OrcaRayContext",
    "RayOnSparkContext",
    "init_orca_context",
    "stop_orca_context",
    "translate",
]


class BigDLCompatWarning(UserWarning):
    """A BigDL keyword Orca accepts but that has no effect here."""


_PARAMETERS = ("cluster_mode", "runtime", "cores", "memory", "num_nodes", "init_ray_on_spark", "init_executor_gateway")
# BigDL's keywords of each family of cluster modes (bigdl/orca/common.py, bigdl/dllib/nncontext.py).
_SPARK_COMMON = ("conf", "spark_log_level", "redirect_spark_log")
_MODE_KWARGS = {
    "local": ("python_location",),
    "yarn": ("hadoop_conf", "driver_cores", "driver_memory", "extra_executor_memory_for_ray", "extra_python_lib",
             "penv_archive", "additional_archive", "hadoop_user_name", "spark_yarn_archive", "jars"),
    "k8s": ("master", "container_image", "driver_cores", "driver_memory", "extra_executor_memory_for_ray",
            "extra_python_lib", "penv_archive", "jars", "python_location"),
    "standalone": ("driver_cores", "driver_memory", "extra_executor_memory_for_ray", "extra_python_lib", "jars",
                   "master", "python_location", "enable_numa_binding", "num_executors"),
    "spark-submit": (),
}
RAY_KWARGS = ("redis_port", "redis_password", "object_store_memory", "verbose", "env", "extra_params",
              "num_ray_nodes", "ray_node_cpu_cores", "include_webui", "system_config")
# runtime="ray": BigDL passed every other keyword on to ray.init(); these are ray.init's (Ray 2.x), and the private
# ones it takes through **kwargs.
RAY_INIT_KWARGS = (
    "address", "num_cpus", "num_gpus", "resources", "labels", "object_store_memory", "local_mode",
    "ignore_reinit_error", "include_dashboard", "dashboard_host", "dashboard_port", "job_config", "configure_logging",
    "logging_level", "logging_format", "logging_config", "log_to_driver", "namespace", "runtime_env",
    "enable_resource_isolation", "cgroup_path", "system_reserved_cpu", "system_reserved_memory", "proxy_server_url",
)
RAY_INIT_PRIVATE_KWARGS = (
    "_enable_object_reconstruction", "_plasma_directory", "_object_spilling_directory", "_node_ip_address",
    "_driver_object_store_memory", "_memory", "_redis_username", "_redis_password", "_temp_dir",
    "_metrics_export_port", "_system_config", "_tracing_startup_hook", "_node_name", "_skip_env_hook",
)
# ... those that configure the Ray head Orca starts (cluster_mode "local"): the argument, Orca option or
# `ray start` flag (in extra_params) each becomes.
_RAY_INIT_START = {
    "num_cpus": "cores", "object_store_memory": "object_store_memory", "include_dashboard": "include_webui",
    "resources": "--resources", "labels": "--labels", "proxy_server_url": "--proxy-server-url",
    "_system_config": "--system-config", "_plasma_directory": "--plasma-directory",
    "_object_spilling_directory": "--object-spilling-directory", "_metrics_export_port": "--metrics-export-port",
    "_node_name": "--node-name",
}
# ... those of this process's connection, which the driver connects with (in every mode).
_RAY_INIT_DRIVER = ("namespace", "runtime_env", "log_to_driver", "job_config", "configure_logging", "logging_level",
                    "logging_format", "logging_config", "_skip_env_hook")
_ISOLATION = "Orca starts its Ray head without cgroup resource isolation"
_NO_REDIS = "Ray 2 has no Redis; Orca protects the Ray clusters it starts with a token"
# ... and those without effect: the values that ask for nothing, and why.
_RAY_INIT_NO_EFFECT = {
    "num_gpus": ((None, 0), "Orca's local Ray head has no GPUs (Ray on Spark nodes take the GPUs Spark assigns "
                            "them: ray_node_gpus)"),
    "local_mode": ((False,), "Ray deprecated local mode; Orca's Ray runs tasks in worker processes"),
    "ignore_reinit_error": ((False,), "Orca connects this process to Ray once per context, and init_orca_context "
                                      "with the same arguments returns the running context"),
    "dashboard_host": ((None, "127.0.0.1", "localhost"), "a local context listens on 127.0.0.1 only"),
    "dashboard_port": ((None,), "Orca picks a free port for the dashboard: see address_info['webui_url']"),
    "enable_resource_isolation": ((False,), _ISOLATION),
    "cgroup_path": ((None,), _ISOLATION),
    "system_reserved_cpu": ((None,), _ISOLATION),
    "system_reserved_memory": ((None,), _ISOLATION),
    "_enable_object_reconstruction": ((False,), "Orca starts its Ray head without that `ray start` flag"),
    "_driver_object_store_memory": ((None,), "Ray deprecated it, and a driver has no object store of its own"),
    "_memory": ((None,), "Orca's local Ray head reserves no heap memory (Ray on Spark nodes: ray_node_memory)"),
    "_node_ip_address": ((None, "127.0.0.1"), "a local context listens on 127.0.0.1 only"),
    "_redis_username": ((None, ""), _NO_REDIS),
    "_redis_password": ((None,), _NO_REDIS),
    "_temp_dir": ((None,), "Orca keeps Ray's session in the context's own temporary folder, removed at stop"),
    "_tracing_startup_hook": ((None,), "Orca starts its Ray head without a tracing hook"),
}
# ... of which these concern the connection, and have no effect with address= either.
_RAY_INIT_CONNECTION = ("local_mode", "ignore_reinit_error", "_driver_object_store_memory")
# The connection Orca's driver makes anyway.
_DRIVER_DEFAULTS = {"log_to_driver": True, "configure_logging": False, "_skip_env_hook": False, "runtime_env": {}}
# Why a keyword that sizes or configures Ray has no effect with address=.
_RUNNING_RAY = ("with address= (or $RAY_ADDRESS) Orca connects to the Ray cluster running there, which was started "
                "with its own settings")

# BigDL keywords that have no Orca counterpart: the value that asks for nothing, and why they do nothing.
_NO_EFFECT = {
    "redis_port": (None, "Ray 2 has no Redis, and Orca picks a free port for the Ray head"),
    "redis_password": (None, "Ray 2 has no Redis; Orca protects the Ray clusters it starts with a token"),
    "verbose": (False, "Orca reports Ray's start-up progress and errors itself"),
    "redirect_spark_log": (True, "Spark logs to stderr here; OrcaContext.log_output = True forwards the JVM's "
                                 "output to a notebook"),
    "enable_numa_binding": (False, "Orca does not bind executors to NUMA nodes"),
    "init_executor_gateway": (True, "Orca starts no BigDL JVM gateway on the executors"),
}
# BigDL keywords of a mode whose Orca counterpart lacks them, and why.
_MODE_LACKS = {
    "extra_executor_memory_for_ray": "these executors run in no containers Orca sizes (only YARN's and "
                                     "Kubernetes' do)",
}
_UNSET: Any = object()


def _warn(name: str, why: str) -> None:
    _notice(f"{name} has no effect: {why}")


def _notice(message: str) -> None:
    """A BigDLCompatWarning attributed to the caller's line, outside this module."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, BigDLCompatWarning, stacklevel=level)


def _family(mode: str) -> str:
    for prefix in ("yarn", "k8s"):
        if mode.startswith(prefix):
            return prefix
    return mode


def _cluster_mode(cluster_mode: str | None, runtime: str) -> str:
    """Orca's mode for BigDL's `cluster_mode`: any case; "bigdl-submit" and an existing SparkContext
    attach as "spark-submit"; None is "local" (BigDL's default without a SparkContext)."""
    from orca_core.engines.spark import active_spark_context

    mode = cluster_mode.lower() if isinstance(cluster_mode, str) else cluster_mode
    if mode == "bigdl-submit":
        mode = "spark-submit"
    running = state.current()
    foreign = active_spark_context() is not None and (running is None or running.request.cluster_mode == "spark-submit")
    if runtime == "spark" and foreign:
        if mode not in (None, "spark-submit"):
            _warn(f"cluster_mode={cluster_mode!r}",
                  "a SparkContext runs in this process already, and Orca attaches to it (as BigDL did)")
        return "spark-submit"
    return "local" if mode is None else mode


def _ray_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Orca's Ray options for BigDL's Ray keywords (consumed from `kwargs`)."""
    from orca_core.backend import _MANAGED_FLAGS

    options = {}
    for name in RAY_KWARGS:
        if name not in kwargs:
            continue
        value = kwargs.pop(name)
        if name in _NO_EFFECT:
            if value != _NO_EFFECT[name][0]:
                _warn(name, _NO_EFFECT[name][1])
        elif name == "system_config":
            if value:
                options.setdefault("extra_params", {})["system-config"] = json.dumps(value)
        elif name == "extra_params" and value:
            params = dict(value) if isinstance(value, dict) else value
            if isinstance(params, dict):
                for key in [k for k in params if str(k).replace("_", "-").lstrip("-") in _MANAGED_FLAGS]:
                    _warn(f"extra_params[{key!r}]", "Orca sets this `ray start` flag itself")
                    params.pop(key)
            options["extra_params"] = {**params, **options.get("extra_params", {})}
        elif value is not None:
            options[name] = value
    return options


def _spark_kwargs(mode: str, kwargs: dict[str, Any], conf: dict, args: dict[str, Any]) -> dict[str, Any]:
    """Orca options (and `conf`, `args` entries) for BigDL's Spark keywords of `mode` (consumed from `kwargs`)."""
    from orca_core.context import registry

    known = {o.name for o in registry().cluster_mode(mode).options}
    family = _family(mode)
    options = {}
    every = {k for names in _MODE_KWARGS.values() for k in names}
    for name in sorted(every & set(kwargs)):
        value = kwargs.pop(name)
        if name == "extra_python_lib":
            args["extra_python_lib"] = value
        elif name not in _MODE_KWARGS.get(family, ()):
            families = sorted(f for f, names in _MODE_KWARGS.items() if name in names)
            _warn(name, f"BigDL read it in its {', '.join(families)} mode(s) only, not with cluster_mode={mode!r}")
        elif name in _NO_EFFECT:
            if value != _NO_EFFECT[name][0]:
                _warn(name, _NO_EFFECT[name][1])
        elif name == "num_executors":
            args["num_nodes"] = value
        elif name == "python_location":
            conf.setdefault("spark.pyspark.python", value)
        elif name in known:
            options[name] = value
        elif name == "jars":
            conf.setdefault("spark.jars", value if isinstance(value, str) else ",".join(value))
        else:
            _warn(name, _MODE_LACKS.get(name, f"Orca's {mode} mode has no such setting"))
    return options


def _orca_options(mode: str, kwargs: dict[str, Any], ray: dict[str, Any]) -> dict[str, Any]:
    """Orca's own options of `mode` that are no BigDL keyword (`queue`, `ray_node_memory`, ...), consumed from
    `kwargs`: the Ray ones join `ray` (they start with Ray, now or lazily), the others are returned."""
    from orca_core.backend import RAY_ON_SPARK_OPTIONS
    from orca_core.context import registry

    ray_names = {o.name for o in RAY_ON_SPARK_OPTIONS}
    options = {}
    for name in sorted({o.name for o in registry().cluster_mode(mode).options} & set(kwargs)):
        (ray if name in ray_names else options)[name] = kwargs.pop(name)
    return options


def _reject_unknown(kwargs: dict[str, Any], mode: str, runtime: str, valid: set[str] | None = None,
                    where: str = "init_orca_context") -> None:
    if not kwargs:
        return
    from orca_core.context import registry

    if valid is None:
        valid = {*_PARAMETERS, *_SPARK_COMMON, *RAY_KWARGS, *(k for names in _MODE_KWARGS.values() for k in names),
                 *(o.name for o in registry().cluster_mode(mode).options)}
    whose = "BigDL's and ray.init's" if runtime == "ray" else "BigDL's"
    name = sorted(kwargs)[0]
    raise ConfigError(
        f'{where} got an unknown keyword "{name}"{closest(name, valid)}; '
        f"valid keywords ({whose}, and Orca's options of this mode): {', '.join(sorted(valid))}"
    )


@dataclass(frozen=True)
class Translation:
    """A BigDL `init_orca_context` call in Orca's terms: the keywords of `orca_core.init_orca_context`,
    the Ray options held until Ray starts lazily, the Spark log level to set, and (runtime="ray") the
    ray.init keywords this process connects to Ray with."""

    arguments: dict[str, Any]
    lazy_ray: dict[str, Any] = field(default_factory=dict)
    spark_log_level: str | None = None
    driver: dict[str, Any] = field(default_factory=dict)


def translate(cluster_mode=None, runtime="spark", cores=None, memory="2g", num_nodes=1, init_ray_on_spark=False,
              init_executor_gateway=_UNSET, **kwargs) -> Translation:
    """What a BigDL `init_orca_context(...)` call becomes in Orca; warns once for each keyword without effect
    and raises for one BigDL did not know. Nothing starts."""
    if init_executor_gateway is not _UNSET and init_executor_gateway is not True:
        _warn("init_executor_gateway", _NO_EFFECT["init_executor_gateway"][1])
    kwargs = dict(kwargs)
    if runtime == "ray":
        return _translate_ray_runtime(cluster_mode, cores, memory, num_nodes, kwargs)
    mode = _cluster_mode(cluster_mode, runtime)
    if cores == "*":
        cores = None
    elif cores is None and mode not in ("local", "spark-submit"):
        cores = 2
        _notice("cores not specified: 2 cores per node, as BigDL")
    if mode == "local" and num_nodes != 1:
        _warn(f"num_nodes={num_nodes!r}", "Spark local mode runs one node (BigDL ignored it too)")
        num_nodes = 1
    if mode == "spark-submit":
        for name, value, neutral in (("cores", cores, None), ("memory", memory, "2g"), ("num_nodes", num_nodes, 1)):
            if value != neutral:
                _warn(f"{name}={value!r}", "the program's SparkContext runs already, with the executors it was started "
                                           "with (spark-submit --executor-cores, --executor-memory, --num-executors)")
        cores, memory, num_nodes = None, "2g", 1
    conf = dict(kwargs.pop("conf", None) or {})
    if mode == "spark-submit" and conf:
        _warn("conf", "the application runs already: pass Spark conf to spark-submit as --conf")
        conf = {}
    log_level = kwargs.pop("spark_log_level", None)
    args: dict[str, Any] = {"cluster_mode": mode, "cores": cores, "memory": memory, "num_nodes": num_nodes}
    ray = _ray_options(kwargs)
    options = _spark_kwargs(mode, kwargs, conf, args)
    options.update(_orca_options(mode, kwargs, ray))
    _reject_unknown(kwargs, mode, runtime)
    args.update(conf=conf or None, init_ray_on_spark=init_ray_on_spark, **options)
    if init_ray_on_spark:
        return Translation({**args, **ray}, spark_log_level=log_level)
    if ray:
        from orca_core.backend import ray_params

        _, request = _core.build_request(**{**args, "init_ray_on_spark": True}, **ray)  # Ray starts later: check now
        ray_params(request.options)
    return Translation(args, ray, log_level)


def init_orca_context(cluster_mode=None, runtime="spark", cores=None, memory="2g", num_nodes=1,
                      init_ray_on_spark=False, init_executor_gateway=_UNSET, **kwargs):
    """BigDL's `init_orca_context`: the SparkContext (runtime="spark") or an OrcaRayContext (runtime="ray").

    Without `init_ray_on_spark=True`, Ray starts at the first `OrcaContext.get_ray_context()`,
    with the Ray keywords given here.
    """
    call = translate(cluster_mode, runtime, cores, memory, num_nodes, init_ray_on_spark, init_executor_gateway,
                     **kwargs)
    sc = _core.init_orca_context(**call.arguments)
    if call.spark_log_level is not None:
        sc.setLogLevel(call.spark_log_level)
    ray_ctx = OrcaRayContext._of(runtime, call)
    if init_ray_on_spark or runtime == "ray":
        try:
            ray_ctx.init()
        except BaseException:
            if runtime == "ray":  # leave no Ray behind that this call started
                stop_orca_context()
            raise
    return ray_ctx if runtime == "ray" else sc


def _translate_ray_runtime(cluster_mode, cores, memory, num_nodes, kwargs) -> Translation:
    """runtime="ray": Ray alone, a local one or the cluster at `address` (or $RAY_ADDRESS), with the other keywords
    read as BigDL passed them on: ray.init()'s, and Orca's options of the mode."""
    from orca_core.context import registry

    given_address = "address" in kwargs
    address = kwargs.pop("address", None) or None
    if address or (cluster_mode is None and os.environ.get("RAY_ADDRESS")):
        mode = "ray"
    else:
        mode = "local" if cluster_mode is None else cluster_mode.lower()
    own = {o.name for o in registry().cluster_mode(mode).options} - {"address"}
    valid = {*_PARAMETERS, *RAY_INIT_KWARGS, *RAY_INIT_PRIVATE_KWARGS, *own}
    _reject_unknown({k: v for k, v in kwargs.items() if k not in valid}, mode, "ray", valid)
    options = {name: kwargs.pop(name) for name in sorted(own & set(kwargs) - set(_RAY_INIT_START))}
    driver = _ray_driver(kwargs)
    attach = _RUNNING_RAY if mode == "ray" else None
    args: dict[str, Any] = {"cluster_mode": mode, "runtime": "ray"}
    for name in sorted(set(_RAY_INIT_START) & set(kwargs)):
        value, target = kwargs.pop(name), _RAY_INIT_START[name]
        if value is None:
            continue
        if attach:
            _warn(name, attach)
        elif target == "cores":
            if cores is not None and cores != value:
                raise ConfigError(f"cores={cores!r} and num_cpus={value!r} both size the local Ray: give one of them")
            cores = value
        elif target.startswith("--"):
            if "extra_params" not in own:
                _warn(name, f"Orca's {mode} mode takes no `ray start` flags")
                continue
            params = options["extra_params"] = dict(options.get("extra_params") or {})
            flag = target[2:]
            if any(str(k).replace("_", "-").lstrip("-") == flag for k in params):
                raise ConfigError(f"{name} and extra_params[{flag!r}] both set `ray start {target}`: give one of them")
            params[flag] = _flag_value(name, value)
        elif target not in own:
            _warn(name, f"Orca's {mode} mode has no such setting")
        elif options.get(target, value) != value:
            raise ConfigError(f"{name}={value!r} and {target}={options[target]!r} set the same thing: give one of them")
        else:
            options[target] = value
    for name in sorted(set(_RAY_INIT_NO_EFFECT) & set(kwargs)):
        value = kwargs.pop(name)
        neutral, why = _RAY_INIT_NO_EFFECT[name]
        if value not in neutral:
            _warn(name, attach if attach and name not in _RAY_INIT_CONNECTION else why)
    if attach:
        for name, value, neutral in (("cores", cores, None), ("memory", memory, "2g"), ("num_nodes", num_nodes, 1)):
            if value != neutral:
                _warn(name, attach)
        return Translation({**args, "address": address, **options}, driver=driver)
    if mode == "local":
        if memory != "2g":
            _warn("memory", 'a local Ray of runtime="ray" is sized by cores alone, as BigDL\'s ray.init(num_cpus=cores)')
        if num_nodes != 1:
            _warn("num_nodes", "a local Ray is one node")
        memory, num_nodes = "2g", 1
    if cores is None and not given_address:  # BigDL: ray.init(num_cpus=cores), 2 when not given
        cores = 2
        _notice("cores not specified: a local Ray of 2 CPUs, as BigDL")
    return Translation({**args, "cores": cores, "memory": memory, "num_nodes": num_nodes, **options}, driver=driver)


def _flag_value(name: str, value) -> str:
    """The `ray start` flag value of ray.init's `name`: JSON for a dict, "k=v,..." for labels."""
    if name in ("resources", "labels", "_system_config") and not isinstance(value, dict):
        raise ConfigTypeError(f"{name} must be a dict, got {type(value).__name__} {value!r}")
    if name == "labels":
        return ",".join(f"{k}={v}" for k, v in value.items())
    return json.dumps(value) if isinstance(value, dict) else value


def _ray_driver(kwargs: dict[str, Any]) -> dict[str, Any]:
    """ray.init's keywords of this process's connection (consumed from `kwargs`), without those that ask for what
    Orca's driver does anyway (log_to_driver=True, configure_logging=False)."""
    driver = {name: kwargs.pop(name) for name in _RAY_INIT_DRIVER if name in kwargs}
    driver = {k: v for k, v in driver.items() if v is not None and not (k in _DRIVER_DEFAULTS and v == _DRIVER_DEFAULTS[k])}
    for name in ("log_to_driver", "configure_logging", "_skip_env_hook"):
        if not isinstance(driver.get(name, False), bool):
            raise ConfigTypeError(f"{name} must be True or False, got {driver[name]!r}")
    if not isinstance(driver.get("namespace", "ns"), str) or driver.get("namespace") == "":
        raise ConfigTypeError(f"namespace must be a non-empty string, got {driver['namespace']!r}")
    if not isinstance(driver.get("runtime_env", {}), dict):
        raise ConfigTypeError(f"runtime_env must be a dict, got {type(driver['runtime_env']).__name__}")
    if {"logging_level", "logging_format"} & set(driver):
        driver.setdefault("configure_logging", True)  # ray.init's default, which BigDL's call kept
    return driver


def stop_orca_context():
    """Stop Ray and Spark (a SparkContext Orca attached to keeps running); idempotent."""
    OrcaRayContext._active_ray_context = None
    _core.stop_orca_context()


class OrcaContext(_OrcaContext):
    """BigDL's OrcaContext: the same settings, and the running engines."""

    @staticmethod
    def get_spark_context():
        """The running SparkContext: Orca's, or (as BigDL) one this program made without init_orca_context."""
        from orca_core.engines.spark import active_spark_context

        sc = active_spark_context() if state.current() is None else None
        return sc if sc is not None else _OrcaContext.get_spark_context()

    @staticmethod
    def get_spark_session():
        """A SparkSession on the running SparkContext (see get_spark_context)."""
        from orca_core.engines.spark import active_spark_context

        if state.current() is None and active_spark_context() is not None:
            from pyspark.sql import SparkSession

            return SparkSession.builder.getOrCreate()  # on the running SparkContext
        return _OrcaContext.get_spark_session()

    @staticmethod
    def get_sql_context():
        """A `SQLContext` on the running SparkContext (deprecated by Spark; prefer get_spark_session())."""
        from pyspark.sql import SQLContext

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return SQLContext(OrcaContext.get_spark_context(), sparkSession=OrcaContext.get_spark_session())

    @staticmethod
    def get_ray_context():
        """The OrcaRayContext, starting Ray now if init_orca_context did not."""
        return OrcaRayContext.get()


class OrcaRayContext:
    """BigDL's handle of the Ray cluster of the context: `init()` starts it, `stop()` stops it."""

    _active_ray_context: OrcaRayContext | None = None
    _lock = threading.Lock()

    def __init__(self, runtime: str = "spark", cores: int = 2, num_nodes: int = 1, **kwargs):
        """runtime="spark": `sc=` and BigDL's Ray keywords; runtime="ray": what BigDL passed to `ray.init`
        (`address`, `num_cpus`, `namespace`, `runtime_env`, ...) and Orca's Ray options."""
        if runtime not in ("spark", "ray"):
            raise ConfigError(f'runtime must be "spark" or "ray", got {runtime!r}')
        kwargs = dict(kwargs)
        sc = kwargs.pop("sc", None) if runtime == "spark" else None
        if runtime == "ray":
            call = _translate_ray_runtime(None, cores, "2g", num_nodes, kwargs)
        else:
            call = Translation({}, _ray_options(kwargs))
            _reject_unknown(kwargs, "local", runtime, valid={"sc", *RAY_KWARGS}, where="OrcaRayContext")
        self._setup(runtime, call, sc)

    @classmethod
    def _of(cls, runtime: str, call: Translation) -> OrcaRayContext:
        """The OrcaRayContext of an init_orca_context call (its keywords checked and warned about there)."""
        ray_ctx = cls.__new__(cls)
        ray_ctx._setup(runtime, Translation({}, call.lazy_ray, driver=call.driver), None)
        return ray_ctx

    def _setup(self, runtime: str, call: Translation, sc) -> None:
        self.runtime = runtime
        self.initialized = False
        self.num_ray_nodes: int | None = None
        self.ray_node_cpu_cores: int | None = None
        self.is_local = False  # set by init(): Ray is one node on this machine
        self._sc = sc
        self._options = call.lazy_ray
        self._start = call.arguments  # runtime="ray" made directly: the Orca context init() starts
        self._driver = call.driver
        self._ray = None
        OrcaRayContext._active_ray_context = self

    def init(self, driver_cores: int = 0):
        """Start Ray (attaching Orca to `sc` or this process's SparkContext if none runs); its address_info."""
        if driver_cores:
            _warn("driver_cores", "the Ray head on the driver runs no tasks in Orca")
        with OrcaRayContext._lock:
            if not self.initialized:
                attached = state.current() is None
                if attached and self.runtime == "ray":
                    _core.init_orca_context(**self._start)
                elif attached:
                    self._attach()
                running = state.current().ray_context
                try:
                    self._ray = running if running is not None else _core.start_ray(**self._options)
                    if self._driver:
                        self._reconnect()
                except BaseException:
                    if attached:  # leave no context behind that this call made
                        _core.stop_orca_context()
                    raise
                plan = state.current().plan.ray
                if plan.kind == "attach":
                    self.num_ray_nodes = self._ray.num_nodes
                    self.ray_node_cpu_cores = int(self._ray.resources.get("CPU", 0)) // max(1, self._ray.num_nodes)
                else:
                    self.num_ray_nodes, self.ray_node_cpu_cores = plan.num_nodes, plan.cpus_per_node
                self.is_local = plan.kind == "local"
                self.initialized = True
        return self.address_info

    def _reconnect(self) -> None:
        """Connect this process again, with the ray.init keywords of its connection (namespace, runtime_env, ...)."""
        import ray

        driver = {"log_to_driver": True, "configure_logging": False, **self._driver}
        plan = state.current().plan.ray
        if plan.kind == "attach" and plan.env:  # Orca's env reaches the job's workers through its runtime_env
            runtime_env = dict(driver.get("runtime_env") or {})
            runtime_env["env_vars"] = {**plan.env, **(runtime_env.get("env_vars") or {})}
            driver["runtime_env"] = runtime_env
        ray.shutdown()
        self._ray.address_info = dict(ray.init(address=self._ray.address, **driver).address_info)

    def _attach(self) -> None:
        from orca_core.engines.spark import active_spark_context

        if self._sc is None and active_spark_context() is None:
            raise NotRunning("no SparkContext runs: call init_orca_context() (or create a SparkContext) first")
        _core.init_orca_context(cluster_mode="spark-submit")

    @property
    def sc(self):
        """The SparkContext Ray runs on (runtime="spark"), once started."""
        if not self.initialized or self.runtime != "spark":
            raise NotRunning("The Ray cluster has not been launched on Spark yet: call init() first")
        return OrcaContext.get_spark_context()

    def purge(self) -> None:
        """BigDL's `ray stop` on every node: Orca's stop() stops every Ray process it started."""
        self.stop()

    def stop(self) -> None:
        """Stop Ray; Spark keeps running (runtime="spark")."""
        if not self.initialized:
            print("The Ray cluster has not been launched.")
            return
        if self.runtime == "ray":
            _core.stop_orca_context()
        else:
            _core.stop_ray()
        self.initialized = False
        self._ray = None
        with OrcaRayContext._lock:
            OrcaRayContext._active_ray_context = None

    @property
    def address_info(self) -> dict:
        """What `ray.init` returned (node_ip_address, object_store_address, webui_url, ...); "redis_address"
        is the head's GCS address, where Ray 2 drivers connect."""
        if self._ray is None:
            raise NotRunning("The Ray cluster has not been launched yet: call init() first")
        info = dict(self._ray.address_info)
        address = self._ray.address
        info["redis_address"] = info.get("redis_address") or (
            info.get("gcs_address") if address.startswith("ray://") else address)
        info.setdefault("webui_url", self._ray.dashboard_url)
        return info

    @property
    def redis_address(self) -> str:
        return self.address_info["redis_address"]

    @classmethod
    def get(cls, initialize: bool = True) -> OrcaRayContext:
        """The active OrcaRayContext, started if `initialize` and not yet started."""
        ray_ctx = OrcaRayContext._active_ray_context
        if ray_ctx is None:
            raise NotRunning("No active RayContext: call init_orca_context() to create one")
        if initialize and not ray_ctx.initialized:
            ray_ctx.init()
        return ray_ctx


class RayOnSparkContext(OrcaRayContext):
    """BigDL's Ray on a SparkContext, with its signature."""

    def __init__(self, sc, redis_port=None, redis_password=None, object_store_memory=None, verbose=False,
                 env=None, extra_params=None, include_webui=True, num_ray_nodes=None, ray_node_cpu_cores=None,
                 system_config=None):
        given = dict(redis_port=redis_port, redis_password=redis_password, object_store_memory=object_store_memory,
                     verbose=verbose, env=env, extra_params=extra_params, num_ray_nodes=num_ray_nodes,
                     ray_node_cpu_cores=ray_node_cpu_cores, system_config=system_config)
        if include_webui is not True:
            given["include_webui"] = include_webui
        super().__init__(runtime="spark", sc=sc, **given)
