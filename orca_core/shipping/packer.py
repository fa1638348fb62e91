"""The packer protocol: what an `EnvPacker` record's `packer` class implements.

A packer is selected by `detect` (packers are asked by descending priority), identifies the
environment's content cheaply with `fingerprint`, and writes the archive with `add_files` (a tar
layout, gzipped in parallel by Orca) or by overriding `pack` (any format Spark unpacks). A packer
whose `prepacked` returns a path is not packed at all: that archive ships as is.

    from orca_core.shipping.packer import Packer

    class PexPacker(Packer):
        format = "zip"
        python = "__main__.py"

        @classmethod
        def detect(cls, request):
            return bool(os.environ.get("PEX"))

        def fingerprint(self, digest):
            digest.update(open(os.environ["PEX"], "rb").read())

        def pack(self, path, progress):
            shutil.copyfile(os.environ["PEX"], path)
"""

from __future__ import annotations

import os
import stat
import sysconfig
from dataclasses import dataclass

from orca_core.shipping.progress import Progress

SPARK_JARS = "lib/python*/site-packages/pyspark/jars"
SPARK_STATE = tuple(f"lib/python*/site-packages/pyspark/{d}" for d in ("work", "logs"))  # what Spark writes in its home


@dataclass(frozen=True)
class PackRequest:
    """What was asked: the environment root and the options of `pack_environment`."""

    prefix: str
    penv_archive: str | None = None
    conda_name: str | None = None
    keep_spark_jars: bool = False
    compress: bool = True


def file_size(path: str) -> int:
    """Bytes a file adds to an archive (0 for links and folders)."""
    st = os.lstat(path)
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


class Packer:
    """Base of the environment packers. `name` is set from the `EnvPacker` record that registers it."""

    name = ""
    format = "tar.gz"
    python = "bin/python"

    def __init__(self, request: PackRequest):
        self.request = request

    @classmethod
    def detect(cls, request: PackRequest) -> bool:
        """Whether this packer packs the requested environment; raise `ConfigError` for bad input."""
        return False

    @property
    def prefix(self) -> str:
        """The root of the environment packed."""
        return self.request.prefix

    def fingerprint(self, digest) -> None:
        """Feed what identifies the environment's content into `digest`: fast, without side effects."""
        digest.update(sysconfig.get_platform().encode())

    def prepacked(self) -> str | None:
        """An archive to ship as is, instead of packing."""
        return None

    def excluded(self) -> tuple[str, ...]:
        """Archive-relative glob patterns left out: what Spark writes in its home as it runs (the
        application folders of local-cluster workers, daemon logs) and, by default, the Spark jars the
        cluster provides."""
        jars = () if self.request.keep_spark_jars else (SPARK_JARS,)
        return tuple(p for folder in (*SPARK_STATE, *jars) for p in (folder, folder + "/*"))

    def describe(self) -> dict:
        """What the archive needs on a node, recorded with it (e.g. the base interpreter)."""
        return {}

    def total_bytes(self) -> int:
        """Bytes `add_files` will add, for progress."""
        return 0

    def add_files(self, tar) -> None:
        """Add the environment's files to `tar` (a `orca_core.shipping.tarball.TarWriter`)."""
        raise NotImplementedError(f"packer {type(self).__name__} implements neither add_files nor pack")

    def layers(self, salt: bytes) -> list | None:
        """The `orca_core.shipping.layers.Layer`s this environment ships as, keyed with `salt` (the
        packer and its options); None (the default) ships it as one archive."""
        return None

    def layer_bytes(self, names) -> int:
        """Bytes `add_layer` will add for the layers `names`, for progress."""
        return 0

    def add_layer(self, name: str, tar) -> None:
        """Add the files of layer `name` to `tar`."""
        raise NotImplementedError(f"packer {type(self).__name__} has no layers")

    def pack(self, path: str, progress: Progress) -> None:
        """Write the archive to `path` (a new private file)."""
        from orca_core.shipping.tarball import tar_gz

        progress.start(self.total_bytes())
        with open(path, "wb", buffering=1 << 20) as out, tar_gz(out, progress, self.request.compress) as tar:
            self.add_files(tar)
        progress.finish()

    def pack_layer(self, name: str, path: str, progress: Progress) -> None:
        """Write the archive of layer `name` to `path` (a new private file)."""
        from orca_core.shipping.tarball import tar_gz

        with open(path, "wb", buffering=1 << 20) as out, tar_gz(out, progress, self.request.compress) as tar:
            self.add_layer(name, tar)
