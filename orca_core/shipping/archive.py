"""The `archive` packer: `penv_archive=`, an environment packed beforehand, shipped as is."""

from __future__ import annotations

import os

from orca_core.errors import ConfigError
from orca_core.shipping.packer import Packer, PackRequest

FORMATS = {".tar.gz": "tar.gz", ".tgz": "tar.gz", ".tar": "tar", ".zip": "zip"}


def archive_format(path: str) -> str | None:
    """The format Spark unpacks an archive as, from its name; None when Spark would not unpack it."""
    lower = path.lower()
    return next((fmt for suffix, fmt in FORMATS.items() if lower.endswith(suffix)), None)


def check_archive(path) -> str:
    """The absolute path of a readable archive Spark can unpack, or a ConfigError saying what is wrong."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"penv_archive must be the path of an archive, got {type(path).__name__} {path!r}")
    full = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isfile(full):
        raise ConfigError(
            f"penv_archive {os.fspath(path)!r} does not exist ({full}); pass the path of an environment packed "
            "with conda-pack or venv-pack (or `orca pack`)"
        )
    fmt = archive_format(full)
    if fmt is None:
        raise ConfigError(
            f"penv_archive {full} is not a .tar.gz, .tgz, .tar or .zip file: Spark unpacks only those"
        )
    import zipfile

    valid = zipfile.is_zipfile(full) if fmt == "zip" else _is_tar(full, fmt)
    if not valid:
        raise ConfigError(f"penv_archive {full} is not a valid {fmt} archive (its content does not read as one)")
    return full


def _is_tar(path: str, fmt: str) -> bool:
    import tarfile

    try:
        with tarfile.open(path, "r:gz" if fmt == "tar.gz" else "r:") as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


class ArchivePacker(Packer):
    """Ships the archive given as `penv_archive=` unchanged: no packing, no copy."""

    @classmethod
    def detect(cls, request: PackRequest) -> bool:
        if request.penv_archive is None:
            return False
        check_archive(request.penv_archive)
        return True

    def __init__(self, request: PackRequest):
        super().__init__(request)
        self._path = check_archive(request.penv_archive)
        self.format = archive_format(self._path)

    def fingerprint(self, digest) -> None:
        st = os.stat(self._path)
        digest.update(f"{os.path.realpath(self._path)}\0{st.st_size}\0{st.st_mtime_ns}".encode())

    def prepacked(self) -> str:
        return self._path
