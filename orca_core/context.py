"""How a call flows: validate, select a backend, plan, start engines; and stop in reverse."""

from __future__ import annotations

import atexit
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from orca_core import pylib, state
from orca_core.backend import ClusterBackend, Request
from orca_core.errors import AlreadyRunning, ConfigError, ConfigTypeError, EngineDied, LaunchError, NotRunning, closest
from orca_core.plan import LaunchPlan
from orca_core.plugins import registry, reload_plugins  # noqa: F401 (also imported from here)
from orca_core.records import ClusterMode, Option
from orca_core.resources import Resources
from orca_core.state import RunningContext, current  # noqa: F401

log = logging.getLogger("orca")

INIT_PARAMETERS = (
    "cluster_mode", "cores", "memory", "num_nodes", "init_ray_on_spark",
    "extra_python_lib", "conf", "runtime",
)
RUNTIMES = ("spark", "ray")

_atexit_registered = False


def _validate_options(mode: ClusterMode, options: dict[str, Any]) -> dict[str, Any]:
    known = {o.name: o for o in mode.options}
    result = {name: o.default for name, o in known.items()}
    for name, value in options.items():
        option: Option | None = known.get(name)
        if option is None:
            valid = sorted((*INIT_PARAMETERS[1:], *known))
            raise ConfigError(
                f'init_orca_context got an unknown option "{name}"{closest(name, valid)} for cluster mode '
                f'"{mode.name}"; valid options: {", ".join(valid)}'
            )
        if value is not None:
            if isinstance(value, bool) and option.type in (int, float, (int, float)):
                raise ConfigTypeError(f"option {name} must be {_type_name(option.type)}, got bool {value!r}")
            if not isinstance(value, option.type):
                raise ConfigTypeError(
                    f"option {name} must be {_type_name(option.type)}, got {type(value).__name__} {value!r}"
                )
            if option.choices and value not in option.choices:
                raise ConfigError(f"option {name}={value!r} must be one of {', '.join(map(repr, option.choices))}")
        result[name] = value
    return result


def _type_name(t) -> str:
    types = t if isinstance(t, tuple) else (t,)
    return " or ".join(x.__name__ for x in types)


def _validate_conf(conf) -> dict[str, str]:
    """Spark properties as Spark stores them: strings; ints and floats as `str`, bools as "true"/"false"."""
    if conf is None:
        return {}
    if not isinstance(conf, dict):
        raise ConfigTypeError(f"conf must be a dict of Spark properties, got {type(conf).__name__}")
    result = {}
    for key, value in conf.items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float)):
            raise ConfigTypeError(
                f"conf[{key!r}] = {value!r} ({type(value).__name__}): Spark conf keys are strings and values "
                f"strings, numbers or bools, as in spark-defaults.conf; write conf={{{str(key)!r}: {str(value)!r}}}"
            )
        result[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return result


def build_request(
    cluster_mode: str = "local", cores: int | None = None, memory: int | str = "2g", num_nodes: int = 1,
    init_ray_on_spark: bool = False, extra_python_lib=None, conf: dict[str, str | int | float | bool] | None = None,
    runtime: str = "spark", **options,
) -> tuple[ClusterMode, Request]:
    """Validate a call's arguments into a Request for the selected mode; nothing is started."""
    if not isinstance(init_ray_on_spark, bool):
        raise ConfigTypeError(f"init_ray_on_spark must be True or False, got {init_ray_on_spark!r}")
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(map(repr, RUNTIMES))}, got {runtime!r}")
    resources = Resources.parse(cores, memory, num_nodes)
    spark_conf = _validate_conf(conf)
    mode = registry().cluster_mode(cluster_mode)
    request = Request(
        cluster_mode=mode.name,
        resources=resources,
        init_ray_on_spark=init_ray_on_spark,
        runtime=runtime,
        py_files=pylib.resolve(extra_python_lib),
        conf=spark_conf,
        options=_validate_options(mode, options),
        app_name=spark_conf.get("spark.app.name", "orca"),
    )
    return mode, request


def _with_settings(plan: LaunchPlan) -> LaunchPlan:
    """Carry the OrcaContext settings to every Spark and Ray worker through their environment."""
    from orca_core.settings import worker_env

    env = worker_env()
    conf = dict(plan.spark_conf)
    if plan.spark == "launch":
        conf.update({f"spark.executorEnv.{k}": v for k, v in env.items()})
    ray = replace(plan.ray, env={**plan.ray.env, **env}) if plan.ray else None
    return replace(plan, env={**plan.env, **env}, spark_conf=conf, ray=ray)


def _plan(backend: ClusterBackend, given: set[str]) -> LaunchPlan:
    """The backend's plan, with settings added; Ray options without Ray are an error, not ignored."""
    from orca_core.backend import RAY_ON_SPARK_OPTIONS

    plan = backend.plan()
    unused = sorted(given & {o.name for o in RAY_ON_SPARK_OPTIONS}) if plan.ray is None else []
    if unused:
        raise ConfigError(f"{', '.join(unused)} configure Ray, which this call does not start: "
                          "pass init_ray_on_spark=True, or drop them")
    return _with_settings(plan)


def plan_orca_context(
    cluster_mode: str = "local", cores: int | None = None, memory: int | str = "2g", num_nodes: int = 1,
    init_ray_on_spark: bool = False, extra_python_lib=None, conf: dict[str, str | int | float | bool] | None = None,
    runtime: str = "spark", **options,
) -> LaunchPlan:
    """The LaunchPlan `init_orca_context` would run with these arguments; nothing is started or uploaded."""
    mode, request = build_request(cluster_mode, cores, memory, num_nodes, init_ray_on_spark, extra_python_lib, conf,
                                  runtime, **options)
    return _plan(mode.backend(request), set(options))


def init_orca_context(
    cluster_mode: str = "local", cores: int | None = None, memory: int | str = "2g", num_nodes: int = 1,
    init_ray_on_spark: bool = False, extra_python_lib=None, conf: dict[str, str | int | float | bool] | None = None,
    runtime: str = "spark", **options,
):
    """Start Spark (and Ray) for this program and return the SparkContext (None if runtime="ray").

    Called again with the same arguments it returns the running context; with other
    arguments it raises: call `stop_orca_context()` first.
    """
    with state.lock:
        mode, request = build_request(cluster_mode, cores, memory, num_nodes, init_ray_on_spark, extra_python_lib,
                                      conf, runtime, **options)
        if state.running is not None and state.running.spark is not None and state.running.spark.jvm_died():
            _end_dead_driver(state.running)
        running = state.running
        if running is not None:
            state.check()
            if running.request == request:
                return running.spark.spark_context if running.spark else None
            raise AlreadyRunning(
                "an Orca context with other arguments is running: call stop_orca_context() first "
                f"(running: {running.request.cluster_mode}, requested: {request.cluster_mode})"
            )
        backend = mode.backend(request)
        plan = _plan(backend, set(options))
        _check_no_other_spark(plan)
        _register_atexit()
        context = _start(request, plan, backend)
    _started(context)
    log.info("Orca context started: %r", context)
    return context.spark.spark_context if context.spark else None


def _check_no_other_spark(plan: LaunchPlan) -> None:
    """A plan that launches Spark cannot run beside a SparkContext this process has already."""
    from orca_core.engines.spark import active_spark_context

    sc = active_spark_context() if plan.spark == "launch" else None
    if sc is not None:
        raise AlreadyRunning(
            f"a SparkContext not started by Orca runs in this process (master {sc.master}): pass "
            'cluster_mode="spark-submit" to use it (Orca attaches to it and leaves it running at stop), '
            "or stop it first"
        )


def _end_dead_driver(context: RunningContext) -> None:
    """Stop what is left of a context whose driver JVM died; unless an Orca call has raised its death
    already, raise it (`EngineDied`): then the next init starts a new context."""
    told, deaths = state.told, list(state.deaths)
    state.running = None
    try:
        _stop(context)
    except Exception:  # what talked to the dead JVM fails; the rest is stopped
        log.debug("Orca: stopping the context of a dead driver JVM", exc_info=True)
    if not told:
        raise EngineDied(deaths[0] if deaths else "the Spark driver JVM died: init_orca_context() starts a new context")


def _start(request: Request, plan: LaunchPlan, backend: ClusterBackend) -> RunningContext:
    """Start everything and make it the running context; interrupted or failing at any point (also just
    after), stop all that was started (see `unwind`)."""
    from orca_core.unwind import Steps, shielded

    context = RunningContext(request, plan, backend)
    steps = Steps()
    try:
        steps.checkpoint("pylib")
        for path in request.py_files:
            pylib.materialize(path)
        context.env.set(plan.env)  # until stop; users override Spark's side through `conf`
        if plan.spark == "launch":
            from orca_core import java

            context.env.set(java.for_spark())  # the Java of every JVM started here
        steps.checkpoint("backend")
        context.plan = steps.run(backend.start, plan) or plan
        steps.checkpoint("backend-started")
        _start_engines(context, steps)
        state.check()  # a process that came up may have died since
        state.running = context  # inside: an interrupt just after it still unwinds
        steps.checkpoint("started")
    except BaseException:
        if state.running is context:
            state.running = None
        steps.interrupted()

        def unwind():
            try:
                _stop(context)
            finally:
                steps.unwind()

        shielded(unwind)
        raise
    return context


def _start_engines(context: RunningContext, steps) -> None:
    """Start Spark and Ray concurrently: the JVM and the Ray head come up side by side."""
    from concurrent.futures import wait

    from orca_core import settings
    from orca_core.engines import spark as spark_engine
    from orca_core.shipping import probe
    from orca_core.unwind import uninterrupted

    plan = context.plan
    if plan.ray:
        context.ray = _ray_engine(context)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="orca-start") as pool:
        ray_future = pool.submit(context.ray.launch) if plan.ray else None
        spark_error = None
        try:
            if ray_future:
                steps.checkpoint("ray")
            if plan.spark:
                forward = settings.OrcaContext.log_output
                gateway = steps.run(spark_engine.launch_gateway, plan, forward, stop=spark_engine.stop_gateway) \
                    if plan.spark == "launch" else None
                steps.checkpoint("spark")
                context.spark = spark_engine.SparkEngine(plan, gateway)
                steps.disown(gateway)
                if probe.needed(plan):  # a node that cannot run the shipped environment fails init, not a job
                    probe.check_executors(context.spark.spark_context, plan)
                if hasattr(context.ray, "spark_ready"):
                    context.ray.spark_ready(context.spark.spark_context)
            if ray_future:
                import ray  # noqa: F401  (while the head starts, not after)
            if ray_future and plan.spark == "launch" and plan.master.startswith("local[") and not ray_future.done():
                _warm_up(context.spark.spark_context)
        except BaseException as error:
            spark_error = error
            steps.interrupted()
        if ray_future:
            uninterrupted(lambda: wait([ray_future]))
        ray_error = ray_future.exception() if ray_future else None
    if spark_error or ray_error:
        raise spark_error or ray_error
    if plan.ray:
        steps.checkpoint("connect")
        sc = context.spark.spark_context if context.spark else None
        context.ray_context = context.ray.connect(log_to_driver=True, spark_context=sc)


def _warm_up(sc) -> None:
    """Start Spark's Python workers while the Ray head is still starting, not at the first job.

    Local masters only: there the cores are this process's, so the job cannot wait on a cluster."""
    sc.setJobDescription("Orca: start the Python workers")
    try:
        sc.parallelize(range(sc.defaultParallelism), sc.defaultParallelism).count()
    finally:
        sc.setJobDescription(None)


def _ray_engine(context: RunningContext):
    """The engine for the plan's kind of Ray: a local head, Ray on Spark, or an existing cluster."""
    from orca_core.engines.ray import AttachedRay, LocalRay, private_workdir
    from orca_core.engines.ray_on_spark import RayOnSpark

    plan = context.plan
    if plan.ray.kind == "local":
        return LocalRay(plan.ray, private_workdir())
    if plan.ray.kind == "attach":
        return AttachedRay(plan.ray, context.backend.ray_auth_token)
    if plan.ray.kind == "on-spark":
        return RayOnSpark(plan.ray, private_workdir(), _driver_host(plan))
    raise LaunchError(f'this orca-core cannot start Ray of kind "{plan.ray.kind}"')


def _driver_host(plan: LaunchPlan) -> str:
    """Where executors reach this driver: the plan's spark.driver.host (which the backend chose and
    checked); for a driver spark-submit started on the cluster, this host's outward address."""
    from orca_core.ports import outward_address

    host = plan.spark_conf.get("spark.driver.host")
    if host:
        return host
    return outward_address() if plan.spark == "attach" else "127.0.0.1"


def _started(context: RunningContext) -> None:
    """Announce a started context; a hook that fails or is interrupted stops it, and init raises."""
    from orca_core.unwind import shielded

    for impl in reversed(registry().pm.hook.orca_context_started.get_hookimpls()):
        try:
            impl.function(context=context)
        except BaseException as error:
            with state.lock:
                if state.running is context:
                    state.running = None
            shielded(lambda: _stop(context))
            if isinstance(error, Exception):
                raise LaunchError(f"the orca_context_started hook of plugin {impl.plugin_name} failed, so the "
                                  f"context was stopped: {type(error).__name__}: {error}") from error
            raise


def _announce(hook: str, context: RunningContext) -> None:
    for impl in reversed(getattr(registry().pm.hook, hook).get_hookimpls()):
        try:
            impl.function(context=context)
        except Exception:
            log.exception("Orca plugin hook %s of %s failed", hook, impl.plugin_name)


def start_ray(**options):
    """Start Ray in the running context, as `init_ray_on_spark=True` would have started it at init,
    with these Ray options (`num_ray_nodes`, `object_store_memory`, ...); return its RayContext.

    If the context runs Ray already, return its RayContext (options are then an error)."""
    with state.lock:
        context = state.running
        if context is None:
            raise NotRunning("no Orca context is running: call init_orca_context() before starting Ray")
        if context.ray_context is not None:
            if options:
                raise AlreadyRunning(f"Ray runs already in this context: {', '.join(sorted(options))} cannot change it")
            return context.ray_context
        mode = registry().cluster_mode(context.request.cluster_mode)
        given = {k: v for k, v in context.request.options.items() if v is not None and k not in options}
        request = replace(context.request, init_ray_on_spark=True,
                          options=_validate_options(mode, {**given, **options}))
        ray_plan = _plan(mode.backend(request), set(options)).ray
        if ray_plan is None:
            raise ConfigError(f'cluster mode "{mode.name}" starts no Ray')
        context.plan = replace(context.plan, ray=ray_plan)
        context.ray = _ray_engine(context)
        try:
            context.ray.launch()
            sc = context.spark.spark_context if context.spark else None
            if hasattr(context.ray, "spark_ready"):
                context.ray.spark_ready(sc)
            context.ray_context = context.ray.connect(log_to_driver=True, spark_context=sc)
        except BaseException:
            from orca_core.unwind import shielded

            shielded(lambda: _stop_ray(context))
            context.plan = replace(context.plan, ray=None)
            raise
        return context.ray_context


def stop_ray() -> None:
    """Stop the Ray of the running context; its Spark keeps running. Idempotent."""
    with state.lock:
        context = state.running
        if context is not None and context.ray is not None and context.spark is not None:
            _stop_ray(context)
            context.plan = replace(context.plan, ray=None)


def stop_orca_context() -> None:
    """Stop Ray, then Spark, then what the backend started; restore the environment. Idempotent.

    An init in another thread waits until the stop is done, so it never meets a stopping Spark."""
    with state.lock:
        context, state.running = state.running, None
        if context is not None:
            _announce("orca_context_stopping", context)
            _stop(context)


def _stop(context: RunningContext) -> None:
    errors = []
    for step in (_stop_ray, _stop_spark, lambda c: c.backend.stop()):
        try:
            step(context)
        except Exception as error:  # keep stopping the rest
            errors.append(error)
            log.exception("Orca: error while stopping")
    context.env.restore()
    state.forget()
    if errors:
        raise errors[0]


def _stop_ray(context: RunningContext) -> None:
    ray, context.ray, context.ray_context = context.ray, None, None
    if ray is not None:
        ray.stop()


def _stop_spark(context: RunningContext) -> None:
    spark, context.spark = context.spark, None
    if spark is not None:
        spark.stop()


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        import os

        atexit.register(stop_orca_context)
        os.register_at_fork(after_in_child=_forget_in_child)
        _atexit_registered = True


def _forget_in_child() -> None:
    """A forked child does not own its parent's context: its stop (and its atexit) stop nothing."""
    state.running, state.lock = None, threading.RLock()  # the parent's lock may have been held at fork
    state.forget()


