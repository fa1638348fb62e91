"""The Python environment of the pods: the image's own, a given archive, or this one packed.

Packing uses `orca_core.shipping`: `environment_key()` names the archive at plan time (no packing),
`pack_environment()` builds it (once per content key, cached) when the application starts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from orca_core.errors import ConfigError, LaunchError

UNPACKED = "environment"
FORMAT = "tar.gz"  # what the venv and conda packers write
PACKING = {"keep_spark_jars": False, "compress": True}  # the image provides Spark's jars
SUFFIXES = (".tar.gz", ".tgz", ".zip", ".tar")


@dataclass(frozen=True)
class ShippedEnv:
    """An archive Spark unpacks as ./environment in every pod."""

    archive: str
    key: str | None = None  # the content key of this environment when Orca packs it at start

    def spark_conf(self, deploy_mode: str) -> dict[str, str]:
        conf = {
            "spark.archives": f"{self.archive}#{UNPACKED}",
            "spark.pyspark.python": f"./{UNPACKED}/bin/python",
        }
        if deploy_mode == "client":
            conf["spark.pyspark.driver.python"] = sys.executable
        return conf


def resolve(options: dict, workdir: str) -> ShippedEnv | None:
    archive = options.get("penv_archive")
    if archive and options.get("ship_python_env"):
        raise ConfigError("pass either penv_archive (an archive you packed) or ship_python_env=True, not both")
    if archive:
        path = os.path.abspath(os.path.expanduser(archive))
        if not os.path.isfile(path) or not path.endswith(SUFFIXES):
            raise ConfigError(
                f"penv_archive={archive!r} must be an existing {', '.join(SUFFIXES)} file, e.g. made with "
                "`venv-pack -o env.tar.gz` or `conda pack -o env.tar.gz`"
            )
        return ShippedEnv(path)
    if options.get("ship_python_env"):
        try:
            from orca_core.shipping import environment_key
        except ImportError as error:
            raise ConfigError(
                "ship_python_env=True needs orca_core.shipping, which this orca-core lacks: upgrade orca-core, "
                "or pack the environment yourself and pass penv_archive='env.tar.gz'"
            ) from error
        _, key = environment_key(**PACKING)
        return ShippedEnv(os.path.join(workdir, f"environment-{key}.{FORMAT}"), key)
    return None


def materialize(env: ShippedEnv) -> None:
    """Pack this environment (cached by content) and link it where the plan said it would be."""
    if env.key is None or os.path.exists(env.archive):
        return
    from orca_core.shipping import pack_environment

    packed = pack_environment(**PACKING)
    if packed.key != env.key:
        raise LaunchError(
            f"the Python environment changed between planning ({env.key}) and packing ({packed.key}): "
            "call init_orca_context() again"
        )
    if packed.format != FORMAT or packed.python != "bin/python":
        raise LaunchError(f"the packed environment {packed.path} is a {packed.format} archive running "
                          f"{packed.python}; pods expect a {FORMAT} archive running bin/python")
    os.makedirs(os.path.dirname(env.archive), mode=0o700, exist_ok=True)
    os.symlink(packed.path, env.archive)
