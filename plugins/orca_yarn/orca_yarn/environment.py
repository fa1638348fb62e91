"""The Python environment shipped to YARN containers, through `orca_core.shipping`."""

from __future__ import annotations

import re

from orca_core.errors import ConfigError, LaunchError

NAME = "python_env"
PYTHON = f"./{NAME}/bin/python"
FORMATS = ("tar.gz", "tgz", "tar", "zip", "jar")
REMOTE_SCHEMES = ("hdfs://", "viewfs://", "s3a://", "abfs://", "abfss://", "gs://", "wasb://", "wasbs://", "ofs://")


def is_remote(path: str) -> bool:
    """An archive already on a cluster file system, shipped as it is."""
    return path.startswith(REMOTE_SCHEMES)


def archive_format(penv_archive: str | None) -> str:
    """The extension Spark unpacks by: that of a given archive, else the packers' "tar.gz"."""
    if not penv_archive:
        return "tar.gz"
    for fmt in FORMATS:
        if penv_archive.lower().endswith("." + fmt):
            return fmt
    raise ConfigError(
        f"penv_archive={penv_archive!r} is not an archive Spark can unpack: use a .tar.gz, .tgz, .tar or .zip file "
        "(e.g. made by conda-pack or venv-pack)"
    )


def _shipping():
    try:
        from orca_core import shipping
    except ImportError as error:
        raise ConfigError(
            "this orca-core cannot pack Python environments (no orca_core.shipping): upgrade orca-core, or pass "
            "penv_archive=\"hdfs:///path/env.tar.gz\" with an environment packed beforehand"
        ) from error
    return shipping


def key(penv_archive: str | None, conda_name: str | None) -> str:
    """The content key of the environment to ship, computed without packing anything."""
    _, env_key = _shipping().environment_key(
        penv_archive=penv_archive, conda_name=conda_name, keep_spark_jars=False, compress=True
    )
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(env_key))


def pack(penv_archive: str | None, conda_name: str | None, expected_key: str, expected_format: str) -> str:
    """The local archive of the environment (packed once per content hash); checks it matches the plan."""
    packed = _shipping().pack_environment(
        penv_archive=penv_archive, conda_name=conda_name, keep_spark_jars=False, compress=True
    )
    got_key = re.sub(r"[^A-Za-z0-9._-]", "_", str(packed.key))
    if got_key != expected_key:
        raise LaunchError(
            f"the Python environment changed between planning ({expected_key}) and packing ({got_key}): "
            "call init_orca_context() again"
        )
    fmt = str(packed.format).lstrip(".")
    if fmt != expected_format:
        raise LaunchError(f"the packed environment {packed.path} is a {fmt} archive, the plan expected {expected_format}")
    return str(packed.path)
