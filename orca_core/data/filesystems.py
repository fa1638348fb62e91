"""File systems the pandas read backend lists and opens files with, selected by URL scheme.

Plugins provide them through the `orca_filesystems` hook (`orca_core.records.FileSystemProvider`);
orca-core provides local paths and `file://`. A FileSystem has `expand(url) -> list[str]` (the files
a path, folder or glob names, sorted, skipping names that start with "_" or ".", as Spark does) and
`open(path) -> binary file`. It is pickled into the tasks that read the files, so it must be picklable.
"""

from __future__ import annotations

import glob
import os
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from orca_core.errors import ConfigError

# Schemes a first-party plugin provides, for install hints.
PROVIDERS = {"hdfs": "orca-yarn", "webhdfs": "orca-yarn"}


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


def scheme(url: str) -> str:
    """The URL's scheme, lower case; "file" for a plain path (or one starting with a Windows drive letter)."""
    name = urlsplit(url).scheme.lower()
    return "file" if len(name) <= 1 else name


def filesystem(url: str) -> FileSystem:
    """The file system of `url`; an error saying what to install when no plugin provides its scheme."""
    from orca_core.plugins import registry

    name = scheme(url)
    found = registry().filesystems.get(name)
    if found is not None:
        return found[0].factory(url)
    hint = PROVIDERS.get(name)
    for provider, error in registry().failed.values():
        if provider.distribution == hint:
            raise ConfigError(f"{name}:// paths are read by {provider}, which failed to load: {error}") from error
    known = ", ".join(f'"{s}://"' for s in sorted(registry().filesystems)) or "none"
    message = f'no file system is installed for "{name}://" paths such as {url!r} (installed: {known})'
    if hint:
        message += f"; {name}:// is provided by {hint}: pip install {hint}"
    raise ConfigError(message + '. The "spark" read backend reads any path Spark\'s Hadoop client can.')
