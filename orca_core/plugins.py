"""The plugin manager factory and the registry of what plugins provide.

Loading order: the built-in plugins of orca-core, then the `orca` entry points of installed
distributions, then `check_pending()`. Nothing is loaded at import time.

`ORCA_DISABLE_PLUGIN_AUTOLOAD=1` skips entry points; `ORCA_PLUGINS=name,...` then (or always)
restricts them to the named entry points.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from orca_core import hookspecs
from orca_core.errors import ConfigError, OrcaError, PluginConflict, UnknownClusterMode, closest
from orca_core.records import ClusterMode, DataStore, EnvPacker, FileSystemProvider

BUILTIN_PLUGINS = ("orca_core.builtin", "orca_core.shipping.plugin")

# First-party names and the distribution that provides them, for install hints.
FIRST_PARTY = {
    "local": "orca-local",
    "spark-submit": "orca-local",
    "standalone": "orca-standalone",
    "ray": "orca-standalone",
    "yarn-client": "orca-yarn",
    "yarn": "orca-yarn",
    "yarn-cluster": "orca-yarn",
    "k8s-client": "orca-k8s",
    "k8s": "orca-k8s",
    "k8s-cluster": "orca-k8s",
    "slurm": "orca-slurm",
    "DISK_n": "orca-storage-disk",
}


class PluginWarning(UserWarning):
    """A plugin could not be loaded; raised as an error if its mode is asked for."""


@dataclass(frozen=True)
class Provider:
    """Where a plugin came from: its entry point name and distribution."""

    plugin: str
    distribution: str
    version: str = ""

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}".strip() + f" (plugin {self.plugin!r})"


@dataclass
class Registry:
    """Everything the loaded plugins provide, indexed for lookup by name."""

    pm: pluggy.PluginManager
    modes: dict[str, tuple[ClusterMode, Provider]] = field(default_factory=dict)
    stores: list[tuple[DataStore, Provider]] = field(default_factory=list)
    packers: list[tuple[EnvPacker, Provider]] = field(default_factory=list)
    filesystems: dict[str, tuple[FileSystemProvider, Provider]] = field(default_factory=dict)
    failed: dict[str, tuple[Provider, BaseException]] = field(default_factory=dict)

    def cluster_mode(self, name: str) -> ClusterMode:
        """The mode registered under `name` or an alias, or an error saying what to install."""
        if not isinstance(name, str):
            raise UnknownClusterMode(f"cluster_mode must be a string, got {type(name).__name__} {name!r}")
        if name in self.modes:
            return self.modes[name][0]
        hint = FIRST_PARTY.get(name)
        for provider, error in self.failed.values():
            if provider.distribution == hint or provider.plugin == name:
                raise UnknownClusterMode(
                    f'cluster mode "{name}" is provided by {provider}, which failed to load: {error}'
                ) from error
        installed = ", ".join(f'"{n}"' for n in sorted(self.modes)) or "none"
        message = f'unknown cluster_mode "{name}"{closest(name, self.modes)}; installed modes: {installed}'
        if hint:
            message += f". Mode \"{name}\" is provided by {hint}: pip install {hint}"
        raise UnknownClusterMode(message)

    def data_store(self, setting: str) -> tuple[DataStore, object]:
        """The store whose pattern matches `setting`, with the match."""
        for store, _ in self.stores:
            match = store.match(setting)
            if match:
                if store.validate:
                    store.validate(match)
                return store, match
        known = ", ".join(s.pattern for s, _ in self.stores)
        message = f"train_data_store={setting!r} matches no installed data store; accepted: {known}"
        if setting.upper().startswith("DISK") and not any(s.name == "DISK" for s, _ in self.stores):
            message += ". DISK_n is provided by orca-storage-disk: pip install orca-storage-disk"
        raise ConfigError(message)


def _provider(ep: metadata.EntryPoint) -> Provider:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return Provider(ep.name, "unknown distribution")
    return Provider(ep.name, dist.metadata["Name"], dist.version)


def _entry_points() -> list[metadata.EntryPoint]:
    selected = os.environ.get("ORCA_PLUGINS")
    wanted = {n.strip() for n in selected.split(",") if n.strip()} if selected else None
    if os.environ.get("ORCA_DISABLE_PLUGIN_AUTOLOAD") and wanted is None:
        return []
    eps = {}
    for ep in metadata.entry_points(group="orca"):
        if wanted is None or ep.name in wanted:
            eps.setdefault(ep.name, ep)
    return list(eps.values())


def get_plugin_manager() -> Registry:
    """Build a fresh plugin manager and the registry of what its plugins provide."""
    import importlib

    pm = pluggy.PluginManager("orca")
    pm.add_hookspecs(hookspecs)
    providers: dict[str, Provider] = {}
    failed: dict[str, tuple[Provider, BaseException]] = {}
    for modname in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname)
        providers[modname] = Provider(modname, "orca-core", _version("orca-core"))
    for ep in _entry_points():
        provider = _provider(ep)
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as error:  # a broken plugin must not break every other mode
            failed[ep.name] = (provider, error)
            warnings.warn(f"Orca plugin {provider} failed to load: {error!r}", PluginWarning, stacklevel=2)
            continue
        pm.register(plugin, name=ep.name)
        providers[ep.name] = provider
    pm.check_pending()
    return _collect(pm, providers, failed)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def _results(pm: pluggy.PluginManager, hook: str, providers: dict[str, Provider]):
    """(record, provider) for every record every plugin yields from `hook`."""
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        provider = providers[pm.get_name(impl.plugin)]
        try:
            records = impl.function() or ()
            yield from ((record, provider) for record in records)
        except Exception as error:
            raise OrcaError(f"plugin {provider} failed in {hook}: {error}") from error


def _collect(pm, providers, failed) -> Registry:
    registry = Registry(pm, failed=failed)
    for mode, provider in _results(pm, "orca_cluster_modes", providers):
        if not isinstance(mode, ClusterMode):
            raise OrcaError(f"plugin {provider} yielded {mode!r} from orca_cluster_modes, not a ClusterMode")
        for name in mode.names:
            if name in registry.modes:
                other = registry.modes[name][1]
                raise PluginConflict(
                    f'cluster mode "{name}" is provided twice: by {other} and by {provider}; '
                    "uninstall one of them"
                )
            registry.modes[name] = (mode, provider)
    for store, provider in _results(pm, "orca_data_stores", providers):
        for known, other in registry.stores:
            if known.name == store.name:
                raise PluginConflict(
                    f'data store "{store.name}" is provided twice: by {other} and by {provider}'
                )
        registry.stores.append((store, provider))
    for packer, provider in _results(pm, "orca_env_packers", providers):
        for known, other in registry.packers:
            if known.name == packer.name:
                raise PluginConflict(
                    f'env packer "{packer.name}" is provided twice: by {other} and by {provider}'
                )
        registry.packers.append((packer, provider))
    registry.packers.sort(key=lambda item: -item[0].priority)
    for fs, provider in _results(pm, "orca_filesystems", providers):
        if not isinstance(fs, FileSystemProvider):
            raise OrcaError(f"plugin {provider} yielded {fs!r} from orca_filesystems, not a FileSystemProvider")
        scheme = fs.scheme.lower()
        if scheme in registry.filesystems:
            other = registry.filesystems[scheme][1]
            raise PluginConflict(
                f'file system "{scheme}://" is provided twice: by {other} and by {provider}; uninstall one of them'
            )
        registry.filesystems[scheme] = (fs, provider)
    return registry


_lock = threading.RLock()
_registry = None


def registry():
    """The registry of installed plugins, built on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = get_plugin_manager()
        return _registry


def reload_plugins() -> None:
    """Forget the loaded plugins; the next use discovers them again."""
    global _registry
    with _lock:
        _registry = None
