"""Registers the DISK_n training data store with Orca."""

import os
import re

from orca_core import hookimpl
from orca_core.errors import ConfigError
from orca_core.records import DataStore, Option


def _validate(match: re.Match) -> None:
    if int(match["n"]) < 2:
        raise ConfigError(
            f"train_data_store={match.group(0)!r} would keep all of the data in memory: DISK_n needs "
            'n >= 2 (1/n of the data in memory), e.g. "DISK_2"; use "DRAM" to keep it all in memory'
        )


def _open(source, match: re.Match, local_dir=None):
    from orca_storage_disk.store import DiskStore

    return DiskStore(source, int(match["n"]), local_dir)


@hookimpl
def orca_data_stores():
    yield DataStore(
        "DISK",
        r"DISK_(?P<n>\d+)",
        open=_open,
        summary="training data on local disk in n slices, one slice in memory at a time",
        validate=_validate,
        options=(
            Option(
                "local_dir", (str, os.PathLike),
                help="a directory path (default: the Spark local dir in Spark tasks, else the temp dir)",
            ),
        ),
    )
