"""Spark's own jars as one archive for `spark.yarn.archive`, built once per Spark version."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile

from orca_core.errors import ConfigError

_CORE_JAR = re.compile(r"spark-core_(?P<scala>[\d.]+)-(?P<version>[^/]+)\.jar")


def jars(home: str) -> list[str]:
    """The sorted jar files of a Spark installation."""
    folder = os.path.join(home, "jars")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jar")) if os.path.isdir(folder) else []
    if not names:
        raise ConfigError(f"Spark at {home} has no jars/ folder of jars: point spark_home at a Spark installation")
    return [os.path.join(folder, n) for n in names]


def archive_name(home: str) -> str:
    """"spark-<version>-<hash>.zip": the Spark version and a hash of its jars' names and sizes (no reading)."""
    files = jars(home)
    version = next((m["version"] for m in map(_CORE_JAR.fullmatch, map(os.path.basename, files)) if m), None)
    if version is None:
        raise ConfigError(f"Spark at {home} has no spark-core jar in jars/: point spark_home at a Spark installation")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{os.path.basename(path)}\0{os.path.getsize(path)}\n".encode())
    return f"spark-{version}-{digest.hexdigest()[:12]}.zip"


def build(home: str) -> str:
    """The cached zip of Spark's jars (jars at its root, stored uncompressed), built if missing."""
    from orca_core.cache import cache_dir

    target = cache_dir("yarn") / archive_name(home)
    if target.exists():
        return str(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for path in jars(home):
            zf.write(path, os.path.basename(path))
    tmp.chmod(0o600)
    os.replace(tmp, target)
    return str(target)
