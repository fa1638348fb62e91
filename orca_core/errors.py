"""Errors a user can cause. Each says what was wrong, what was expected and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OrcaError(Exception):
    """Base of every error Orca raises for bad input or a failed launch."""


class ConfigError(OrcaError, ValueError):
    """A value or an option that Orca cannot honour."""


class ConfigTypeError(OrcaError, TypeError):
    """A value of the wrong type."""


class UnknownClusterMode(ConfigError):
    """No installed plugin provides the requested cluster mode."""


class PluginConflict(OrcaError):
    """Two plugins provide the same name."""


class NotRunning(OrcaError, RuntimeError):
    """Something that needs a running context was asked for without one."""


class AlreadyRunning(OrcaError, RuntimeError):
    """A second, different context was asked for while one runs."""


class LaunchError(OrcaError, RuntimeError):
    """An engine or daemon failed to start; the message carries its last output."""


class NodeEnvironmentError(LaunchError):
    """An executor could not start the shipped Python environment from its host's cache; the message
    names the executor and its host, with the launcher's reason ("orca: ...")."""


class EngineDied(OrcaError, RuntimeError):
    """A process of the running context (a Ray head, a Ray node, a Spark daemon) died unexpectedly."""


class CacheError(OrcaError, OSError):
    """The Orca cache cannot be written: a read-only folder, or the disk or a write limit ran out."""


def closest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest candidate, or ''."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""
