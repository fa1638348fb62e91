"""The plugin built into orca-core: the DRAM training data store."""

from __future__ import annotations

from orca_core import hookimpl
from orca_core.records import DataStore


def _open_dram(source, match):
    from orca_core.data.stores import DramStore

    return DramStore(source)


@hookimpl
def orca_data_stores():
    yield DataStore("DRAM", r"DRAM", open=_open_dram, summary="keep the training data in memory as Arrow")
