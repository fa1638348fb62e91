"""File systems the pandas read backend lists and opens files with, selected by URL scheme.

Local paths and `file://` are built in. A plugin adds a scheme when its module is loaded::

    from orca_core.data.filesystems import register_filesystem

    register_filesystem("hdfs", lambda url: MyHdfs(url))   # factory(url) -> FileSystem

A FileSystem has `expand(url) -> list[str]` (the files a path, folder or glob names, sorted,
skipping names that start with "_" or ".", as Spark does) and `open(path) -> binary file`. It is
pickled into the tasks that read the files, so it must be picklable.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from orca_core.errors import ConfigError

# Schemes a first-party plugin provides, for install hints.
PROVIDERS = {"hdfs": "orca-yarn", "webhdfs": "orca-yarn", "viewfs": "orca-yarn"}


class FileSystem(Protocol):
    def expand(self, url: str) -> list[str]: ...

    def open(self, path: str) -> BinaryIO: ...


def hidden(name: str) -> bool:
    """Spark skips files whose name starts with "_" or "." (_SUCCESS, .crc files)."""
    return name.startswith(("_", "."))


class LocalFileSystem:
    """Paths of this machine (or of a folder every node mounts): plain, or `file://`."""

    def expand(self, url: str) -> list[str]:
        path = urlsplit(url).path if url.startswith("file:") else url
        path = os.path.abspath(os.path.expanduser(path))
        matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path] if os.path.exists(path) else []
        files = []
        for match in matches:
            if os.path.isdir(match):
                files += [os.path.join(match, n) for n in sorted(os.listdir(match))
                          if not hidden(n) and os.path.isfile(os.path.join(match, n))]
            elif not hidden(os.path.basename(match)):
                files.append(match)
        return files

    def open(self, path: str) -> BinaryIO:
        return open(path, "rb")


_factories: dict[str, Callable[[str], FileSystem]] = {
    "": lambda url: LocalFileSystem(),
    "file": lambda url: LocalFileSystem(),
}


def register_filesystem(scheme: str, factory: Callable[[str], FileSystem]) -> None:
    """Make `factory(url)` the file system of URLs with this scheme."""
    _factories[scheme.lower()] = factory


def scheme(url: str) -> str:
    name = urlsplit(url).scheme.lower()
    return "" if len(name) == 1 else name  # a Windows drive letter


def filesystem(url: str) -> FileSystem:
    """The file system of `url`; an error saying what to install when no plugin provides its scheme."""
    name = scheme(url)
    if name not in _factories:
        from orca_core.context import registry

        registry()  # loading the plugins lets them register their schemes
    if name not in _factories:
        known = ", ".join(f'"{s}"' for s in sorted(_factories) if s) or "none"
        message = f'no file system is installed for "{name}://" paths such as {url!r} (installed: {known})'
        if name in PROVIDERS:
            message += f"; {name}:// is provided by {PROVIDERS[name]}: pip install {PROVIDERS[name]}"
        raise ConfigError(message + '. The "spark" read backend reads any path Spark\'s Hadoop client can.')
    return _factories[name](url)
