"""A class-data-sharing (CDS) archive for the Spark driver JVM, built once per Java and classpath.

A starting driver parses and verifies thousands of Spark classes; a JVM that maps a CDS archive
of them starts with about half the CPU time. The first driver of a given Java and classpath
records its classes when it exits (`-XX:ArchiveClassesAtExit`, which costs that run a few
seconds); later drivers map the archive (`-XX:SharedArchiveFile`). The archive lives in the
Orca cache (`jvm/`, about 70 MB). A user whose `spark.driver.extraJavaOptions` names any
`-Xshare` or archive option keeps exactly what they set; `-Xshare:off` turns this off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

OPTION = "spark.driver.extraJavaOptions"
_USER_FLAGS = ("-Xshare", "SharedArchiveFile", "ArchiveClassesAtExit")
_CLASSPATH_ENV = ("SPARK_HOME", "SPARK_CONF_DIR", "HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_DIST_CLASSPATH")


@dataclass(frozen=True)
class Archive:
    """The archive of one Java and classpath, and where this driver records it if it is missing."""

    path: Path
    recording: Path | None = None

    def java_options(self, user: str = "") -> str:
        """The driver's java options: the user's, then this archive's (its JVM messages muted)."""
        flag = f"-XX:ArchiveClassesAtExit={self.recording}" if self.recording else f"-XX:SharedArchiveFile={self.path}"
        return f"{user} {flag} -Xlog:cds*=off".strip()

    def finish(self, returncode: int | None) -> None:
        """After the driver JVM exited: keep its recording if it exited cleanly, else drop it."""
        if self.recording is None:
            return
        if returncode == 0 and self.recording.is_file() and self.recording.stat().st_size:
            os.replace(self.recording, self.path)
        else:
            self.recording.unlink(missing_ok=True)


def for_driver(conf: dict[str, str]) -> Archive | None:
    """The archive a driver JVM started with Spark conf `conf` uses, or None (user's choice, no Java)."""
    from orca_core.cache import cache_dir

    if any(flag in conf.get(OPTION, "") for flag in _USER_FLAGS):
        return None
    key = _key(conf)
    if key is None:
        return None
    folder = cache_dir("jvm")
    _drop_orphan_recordings(folder)
    path = folder / f"spark-driver-{key}.jsa"
    if path.is_file():
        return Archive(path)
    return Archive(path, folder / f"spark-driver-{key}.{os.getpid()}.recording")


def _key(conf: dict[str, str]) -> str | None:
    """A digest of what the archive depends on: the JDK build and the driver's classpath."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    spark_home = _spark_home()
    if not java or not os.path.exists(java) or spark_home is None:
        return None
    jdk = Path(os.path.realpath(java)).parent.parent
    parts = [str(jdk), *(_stat(jdk / "lib" / name) for name in ("modules", "server/libjvm.so"))]
    jars = Path(spark_home, "jars")
    parts += sorted(f"{p.name}:{p.stat().st_size}" for p in jars.glob("*.jar")) if jars.is_dir() else []
    parts += [f"{name}={os.environ.get(name, '')}" for name in _CLASSPATH_ENV]
    parts.append(conf.get("spark.driver.extraClassPath", ""))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _spark_home() -> str | None:
    try:
        from pyspark.find_spark_home import _find_spark_home

        return os.environ.get("SPARK_HOME") or _find_spark_home()
    except Exception:
        return None


def _stat(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path.name}:-"
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"


def _drop_orphan_recordings(folder: Path) -> None:
    """Recordings of drivers that died before their JVM's exit was seen are incomplete: remove them."""
    for recording in folder.glob("*.recording"):
        pid = recording.suffixes[-2].lstrip(".") if len(recording.suffixes) >= 2 else ""
        if not pid.isdigit() or not _alive(int(pid)):
            recording.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
