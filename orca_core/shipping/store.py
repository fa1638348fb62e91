"""The per-user cache of packed environments: one archive per key, written once.

`cache_dir("envs")` holds `<packer>-<key>.<format>` (0600) and its `.json` record. A pack writes
to a temporary name and renames, under a file lock per key, so concurrent packs of one environment
pack once and no reader sees a partial archive.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path

LOCK_TIMEOUT = 3600.0


def archive_name(packer: str, key: str, fmt: str) -> str:
    return f"{packer}-{key}.{fmt}"


def manifest_name(packer: str, key: str) -> str:
    """The manifest of a layered environment: its layers' archive names, one per line."""
    return f"{packer}-{key}.layers"


def write_manifest(folder: Path, name: str, archives: list[str]) -> None:
    """Write a manifest in one step (it is content-keyed: a concurrent writer writes the same)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{archive}\n" for archive in archives))
        os.replace(tmp, folder / name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def lookup(folder: Path, name: str) -> dict | None:
    """The record of a complete cached archive, or None."""
    path = folder / name
    try:
        record = json.loads((folder / (name + ".json")).read_text())
        if path.stat().st_size == record["size"]:
            return record
    except (OSError, ValueError, KeyError):
        pass
    return None


def store(folder: Path, name: str, write, record: dict, on_wait=None, doing: str = "packing") -> tuple[dict, bool]:
    """The record of archive `name`, written by `write(tmp_path)` unless it is cached; and whether it was.

    The disk or a write limit running out is a CacheError saying so (`doing` names the work), with nothing kept."""
    from filelock import FileLock, Timeout

    from orca_core.cache import exhausted

    found = lookup(folder, name)
    if found:
        return found, True
    lock = FileLock(str(folder / (name + ".lock")), mode=0o600)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait:
            on_wait()
        lock.acquire(timeout=LOCK_TIMEOUT)
    try:
        found = lookup(folder, name)
        if found:
            return found, True
        for stale in glob.glob(str(folder / f".{name}.*.tmp*")):
            os.unlink(stale)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            record = {**record, "size": os.path.getsize(tmp)}
            meta = tmp + ".json"
            with open(os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump(record, f, indent=2, sort_keys=True)
            os.replace(meta, folder / (name + ".json"))
            os.replace(tmp, folder / name)
        except BaseException as e:
            for leftover in (tmp, tmp + ".json"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            full = exhausted(e, doing, folder) if isinstance(e, OSError) else None
            if full:
                raise full from e
            raise
        return record, False
    finally:
        lock.release()
