"""The per-user cache directory: `$ORCA_CACHE_DIR`, else `$XDG_CACHE_HOME/orca`, else ~/.cache/orca."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), created private to the user (0700)."""
    root = os.environ.get("ORCA_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "orca")
    path = Path(root, *parts)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in (Path(root), path):
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)
    return path
