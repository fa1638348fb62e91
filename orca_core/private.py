"""Folders private to the user outside Orca's cache, safe in a shared temp dir such as /tmp.

A folder at a predictable path there may have been made first by another user, or be a link to
one of theirs: `private_dir` reuses a folder only if it is a real folder (not a link) of this
user, and takes group and other access away; anything else is an error, never followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orca_core.errors import ConfigError


def private_dir(path: str | os.PathLike, fix: str = "remove it", fresh: bool = False) -> Path:
    """`path` as a folder only this user can enter: created 0700, or an existing one checked.

    `fix` says how to get past a folder that fails the check; with `fresh` the folder must not
    exist yet (a new name in a private parent).
    """
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
        created = True
    except FileExistsError:
        created = False
    info = path.lstat()
    if not created and fresh:
        raise ConfigError(f"{path} exists already, and Orca makes it anew: {fix}")
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path} is not a folder (a link or a file, which Orca does not follow): {fix}")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"{path} belongs to uid {info.st_uid}, not to this user (uid {os.getuid()}): {fix}")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700, follow_symlinks=False)
    return path
