"""The per-user cache directory: `$ORCA_CACHE_DIR`, else `$XDG_CACHE_HOME/orca`, else ~/.cache/orca.

Entries are content-addressed and created once with `publish`: written under a private temporary
name next to the entry and renamed into place, so concurrent first uses race harmlessly (the first
rename wins, the others' temporaries are removed) and an interrupted or failed write leaves nothing.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from orca_core.errors import CacheError

_EXHAUSTED = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded",
              errno.EFBIG: "file size limit reached"}


def root() -> Path:
    """The cache root (not created)."""
    path = os.environ.get("ORCA_CACHE_DIR")
    if not path:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(xdg, "orca")
    return Path(path)


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), created private to the user (0700)."""
    base = root()
    path = Path(base, *parts)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in (base, path):
            if folder.stat().st_mode & 0o077:
                folder.chmod(0o700)
    except OSError as e:
        raise CacheError(
            f"cannot use the Orca cache folder {path}: {e.strerror}. Point ORCA_CACHE_DIR at a writable "
            "folder of your own"
        ) from e
    return path


def publish(target: Path, write: Callable[[Path], None], directory: bool = False, what: str = "") -> Path:
    """`target`, created unless it exists by `write(tmp)` filling a private temporary file (or folder)."""
    if target.exists():
        return target
    try:
        if directory:
            tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        else:
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            tmp = Path(name)
    except OSError as e:
        raise exhausted(e, what or f"writing {target.name}", target.parent) or CacheError(
            f"cannot write into the Orca cache folder {target.parent}: {e.strerror}. Point ORCA_CACHE_DIR at "
            "a writable folder of your own"
        ) from e
    try:
        write(tmp)
        try:
            os.replace(tmp, target)
        except OSError as e:  # a folder made by another process first: same content, keep theirs
            if not (directory and e.errno in (errno.ENOTEMPTY, errno.EEXIST) and target.is_dir()):
                raise
    except OSError as e:
        full = exhausted(e, what or f"writing {target.name}", target.parent)
        if full:
            raise full from e
        raise
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            tmp.unlink()
    return target


def exhausted(error: OSError, doing: str, where: Path | str) -> CacheError | None:
    """A CacheError saying what ran out while `doing` in `where`, if `error` is resource exhaustion."""
    reason = _EXHAUSTED.get(error.errno)
    if reason is None:
        return None
    try:
        free = f"{shutil.disk_usage(where).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    message = (f"{doing} failed: {reason} on {where} ({free}); nothing was kept. Free space there, raise the "
               "limit, or point ORCA_CACHE_DIR at a larger file system")
    return CacheError(message)
