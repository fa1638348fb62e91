"""Registers the built-in environment packers with Orca."""

from __future__ import annotations

from orca_core import hookimpl
from orca_core.records import EnvPacker, Option
from orca_core.shipping.archive import ArchivePacker
from orca_core.shipping.conda import CondaPacker
from orca_core.shipping.venv import VenvPacker


@hookimpl
def orca_env_packers():
    yield EnvPacker(
        "archive", ArchivePacker, "ship penv_archive=, an environment packed beforehand, as is", priority=100,
        options=(Option("penv_archive", str, help="a .tar.gz, .tgz, .tar or .zip with bin/python at its root"),),
    )
    yield EnvPacker(
        "conda", CondaPacker, "pack a conda environment (conda-meta/) with conda-pack", priority=50,
        options=(Option("conda_name", str, help="the conda environment to pack (default: the running one)"),),
    )
    yield EnvPacker("venv", VenvPacker, "pack a virtualenv/venv with venv-pack", priority=10)
