"""Data creators: the user functions that download or build training data inside workers.

With `OrcaContext.serialize_data_creator = True` (set on the driver before `init_orca_context`;
Spark and Ray workers inherit it), `run_data_creator` holds a per-node, per-user file lock while
the creator runs, so workers of one node that download to the same place do it one at a time:
the first one downloads, the others find the finished files.

Lock files live in `$ORCA_LOCK_DIR` if set, else in `<temp dir>/orca-locks-<uid>` (0700, owned by
the user), where the temp dir is Python's `tempfile.gettempdir()` on that node. Without a `key`
every creator of a node shares one lock; creators given different keys do not block each other.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orca_core.errors import ConfigTypeError

LOCK_DIR_ENV = "ORCA_LOCK_DIR"
_locks: dict[str, Any] = {}
_locks_guard = threading.Lock()


def run_data_creator(creator: Callable[[Any, int], Any], config: Any, batch_size: int, *, key: str | None = None):
    """`creator(config, batch_size)`, under the node's lock `key` when `OrcaContext.serialize_data_creator`."""
    from orca_core.settings import OrcaContext

    if not callable(creator):
        raise ConfigTypeError(
            f"run_data_creator needs a function creator(config, batch_size), got {type(creator).__name__}"
        )
    if not OrcaContext.serialize_data_creator:
        return creator(config, batch_size)
    with creator_lock(key):
        return creator(config, batch_size)


def creator_lock(key: str | None = None):
    """The node-wide lock of `key` (a `filelock.FileLock`, re-entrant within one thread)."""
    path = str(lock_path(key))
    with _locks_guard:
        if path not in _locks:
            from filelock import FileLock

            _locks[path] = FileLock(path)
        return _locks[path]


def lock_path(key: str | None = None) -> Path:
    """Where the lock of `key` lives on this node."""
    if key is None:
        name = "data-creator"
    elif isinstance(key, str) and key:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", key)[:40]
        name = f"data-creator-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    else:
        raise ConfigTypeError(f"the data creator lock key must be a non-empty string or None, got {key!r}")
    return lock_dir() / f"{name}.lock"


def lock_root() -> str:
    """`$ORCA_LOCK_DIR`, else `<temp dir>/orca-locks-<uid>`: the lock folder of this node's processes."""
    return os.environ.get(LOCK_DIR_ENV) or os.path.join(tempfile.gettempdir(), f"orca-locks-{_user()}")


def lock_dir() -> Path:
    """`lock_root()`, created 0700, and refused unless the user owns it."""
    from orca_core.private import private_dir

    return private_dir(lock_root(), f"the data creator lock folder cannot be used: remove it, or set {LOCK_DIR_ENV} "
                                    "to a folder of yours")


def _user() -> str:
    if hasattr(os, "getuid"):
        return str(os.getuid())
    import getpass

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", getpass.getuser())
