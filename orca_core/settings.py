"""`OrcaContext`: the process-wide settings and the handles of the running context."""

from __future__ import annotations

import json
import os
import re
import warnings

from orca_core.errors import ConfigError, ConfigTypeError, NotRunning

SETTINGS_ENV = "ORCA_SETTINGS"
_DEFAULTS = {
    "log_output": False,
    "serialize_data_creator": False,
    "pandas_read_backend": "spark",
    "train_data_store": "DRAM",
    "barrier_mode": True,
}
_values = dict(_DEFAULTS)


def _inherit() -> None:
    """In a worker, start from the settings the driver had at init (see `worker_env`)."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw:
        try:
            inherited = json.loads(raw)
        except ValueError:
            return
        _values.update({k: v for k, v in inherited.items() if k in _DEFAULTS})


def worker_env() -> dict[str, str]:
    """The environment entry that carries this driver's settings to Spark and Ray workers."""
    return {SETTINGS_ENV: json.dumps(_values, sort_keys=True)}


_inherit()
# Settings read only when a context starts.
_INIT_ONLY = {"log_output"}


def _bool(name, value):
    if not isinstance(value, bool):
        raise ConfigTypeError(f"OrcaContext.{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def _backend(name, value):
    if not isinstance(value, str) or value.lower() not in ("spark", "pandas"):
        raise ConfigError(f"OrcaContext.{name} must be \"spark\" or \"pandas\", got {value!r}")
    return value.lower()


def _store(name, value):
    if not isinstance(value, str):
        raise ConfigTypeError(f"OrcaContext.{name} must be a string such as \"DRAM\" or \"DISK_2\", got {value!r}")
    value = value.strip().upper()
    if re.fullmatch(r"DISK_\w*", value) and not re.fullmatch(r"DISK_\d+", value):
        raise ConfigError(f"OrcaContext.{name}={value!r}: write DISK_n with a whole number n >= 2, such as \"DISK_2\"")
    from orca_core.plugins import registry

    registry().data_store(value)
    return value


_VALIDATORS = {
    "log_output": _bool,
    "serialize_data_creator": _bool,
    "pandas_read_backend": _backend,
    "train_data_store": _store,
    "barrier_mode": _bool,
}


def _setting(name: str, doc: str):
    def fget(cls):
        return _values[name]

    def fset(cls, value):
        _values[name] = _VALIDATORS[name](name, value)
        from orca_core.state import current

        if name in _INIT_ONLY and current() is not None:
            warnings.warn(
                f"OrcaContext.{name} takes effect at the next init_orca_context(); "
                "the running context keeps its current behaviour",
                stacklevel=2,
            )

    return property(fget, fset, doc=doc)


class _Settings(type):
    log_output = _setting(
        "log_output", "Forward what Spark's JVM and Ray's workers print to this process (read at init)."
    )
    serialize_data_creator = _setting(
        "serialize_data_creator", "Run data creators under a per-node file lock (see orca_core.data)."
    )
    pandas_read_backend = _setting("pandas_read_backend", '"spark" or "pandas": how orca_core.data reads files.')
    train_data_store = _setting("train_data_store", '"DRAM" or "DISK_n" (n >= 2, from orca-storage-disk).')
    barrier_mode = _setting("barrier_mode", "Start Ray-on-Spark nodes as one barrier stage (all or nothing).")

    def __setattr__(cls, name, value):
        if name not in _DEFAULTS and not name.startswith("_"):
            from orca_core.errors import closest

            raise ConfigError(
                f"OrcaContext has no setting {name!r}{closest(name, _DEFAULTS)}; "
                f"settings: {', '.join(sorted(_DEFAULTS))}"
            )
        super().__setattr__(name, value)


class OrcaContext(metaclass=_Settings):
    """Settings of this process and the handles of its running context.

    Set a setting as a class attribute (`OrcaContext.log_output = True`); every setter
    validates and raises `OrcaError` naming the accepted values.
    """

    @staticmethod
    def get_spark_context():
        """The running `SparkContext`."""
        return _running("Spark").spark_context

    @staticmethod
    def get_spark_session():
        """A `SparkSession` on the running `SparkContext`."""
        return _running("Spark").spark_session

    @staticmethod
    def get_ray_context():
        """The running `RayContext` (address, dashboard_url, num_nodes, resources, stop())."""
        return _running("Ray").get_ray_context()

    @staticmethod
    def settings() -> dict:
        """A copy of every setting, as the workers should see it."""
        return dict(_values)

    @staticmethod
    def reset():
        """Restore every setting to its default."""
        _values.clear()
        _values.update(_DEFAULTS)


def _running(engine: str):
    from orca_core.state import current

    context = current()
    if context is None:
        raise NotRunning(f"no Orca context is running: call init_orca_context() before asking for {engine}")
    return context
