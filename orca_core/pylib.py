"""`extra_python_lib`: .py, .zip and .egg files and directories, made importable on every node.

A directory is zipped once per content hash into the cache: a package directory (one with
`__init__.py`) keeps its name inside the zip, any other directory contributes its contents.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from orca_core.errors import ConfigError, ConfigTypeError

SUFFIXES = (".py", ".zip", ".egg")


def resolve(extra_python_lib) -> tuple[str, ...]:
    """Absolute paths of the entries of a comma-separated string or a list; errors name the entry."""
    if extra_python_lib is None:
        return ()
    if isinstance(extra_python_lib, (str, os.PathLike)):
        entries = str(extra_python_lib).split(",")
    elif isinstance(extra_python_lib, (list, tuple)):
        entries = [os.fspath(e) for e in extra_python_lib]
    else:
        raise ConfigTypeError(
            "extra_python_lib must be a comma-separated string or a list of paths, "
            f"got {type(extra_python_lib).__name__}"
        )
    paths = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        path = Path(entry).expanduser().resolve()
        if not path.exists():
            raise ConfigError(f"extra_python_lib entry {entry!r} does not exist ({path})")
        if path.is_file() and path.suffix not in SUFFIXES:
            raise ConfigError(
                f"extra_python_lib entry {entry!r} is not a .py, .zip or .egg file nor a directory"
            )
        paths.append(str(path))
    return tuple(dict.fromkeys(paths))


def _files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _arcroot(directory: Path) -> str:
    return directory.name if (directory / "__init__.py").exists() else ""


def zip_name(directory: str) -> str:
    """The cache file name of a directory's zip, from its name and a hash of its contents."""
    root = Path(directory)
    digest = hashlib.sha256(_arcroot(root).encode())
    for path in _files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return f"{root.name}-{digest.hexdigest()[:20]}.zip"


def shipped_path(path: str) -> str:
    """The file that ships for an entry: the entry itself, or its directory's cached zip."""
    if not os.path.isdir(path):
        return path
    from orca_core.cache import cache_dir

    return str(cache_dir("pylib") / zip_name(path))


def import_root(path: str) -> str:
    """What goes on `sys.path` for an entry: a .py file's own cached folder, else the shipped file."""
    if not path.endswith(".py") or os.path.isdir(path):
        return shipped_path(path)
    from orca_core.cache import cache_dir

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20]
    return str(cache_dir("pylib") / f"{Path(path).stem}-py-{digest}")


def materialize(path: str) -> str:
    """Write the cached zip (or folder) of an entry if it is not there yet; return the shipped file.

    Safe under concurrent processes: see `orca_core.cache.publish`."""
    from orca_core.cache import publish

    if path.endswith(".py") and not os.path.isdir(path):
        publish(Path(import_root(path)), lambda tmp: (tmp / Path(path).name).write_bytes(Path(path).read_bytes()),
                directory=True, what=f"copying extra_python_lib entry {path}")
    target = Path(shipped_path(path))
    if os.path.isdir(path):
        publish(target, lambda tmp: _zip(Path(path), tmp), what=f"zipping extra_python_lib entry {path}")
    return str(target)


def _zip(root: Path, out: Path) -> None:
    arcroot = _arcroot(root)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in _files(root):
            zf.write(file, os.path.join(arcroot, str(file.relative_to(root))))
