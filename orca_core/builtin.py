"""The plugin built into orca-core: the DRAM training data store and the local file system."""

from __future__ import annotations

from orca_core import hookimpl
from orca_core.records import DataStore, FileSystemProvider


def _open_dram(source, match):
    from orca_core.data.stores import DramStore

    return DramStore(source)


@hookimpl
def orca_data_stores():
    yield DataStore("DRAM", r"DRAM", open=_open_dram, summary="keep the training data in memory as Arrow")


def _local(url):
    from orca_core.data.filesystems import LocalFileSystem

    return LocalFileSystem()


@hookimpl
def orca_filesystems():
    yield FileSystemProvider("file", _local, "paths of this machine, plain or file://")
