"""A class-data-sharing (CDS) archive for the Spark driver JVM, built once per Java and classpath.

A starting driver parses and verifies thousands of Spark classes; a JVM that maps a CDS archive
of them starts with about half the CPU time. The first driver of a given Java and classpath
records its classes when it exits (`-XX:ArchiveClassesAtExit`, which costs that run a few
seconds); later drivers map the archive (`-XX:SharedArchiveFile`). The archive lives in the
Orca cache (`jvm/`, about 70 MB). A user whose `spark.driver.extraJavaOptions` names any
`-Xshare` or archive option keeps exactly what they set; `-Xshare:off` turns this off. A
classpath with a non-empty folder (a Spark or Hadoop conf dir) cannot be archived by the JVM:
those drivers start without an archive.
"""

from __future__ import annotations

import hashlib
import os
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
            return
        self.recording.unlink(missing_ok=True)
        if returncode == 0:  # a clean exit that wrote nothing: this classpath cannot be archived
            self.path.with_suffix(".unusable").touch()


def for_driver(conf: dict[str, str]) -> Archive | None:
    """The archive a driver JVM started with Spark conf `conf` uses, or None (user's choice, no Java)."""
    from orca_core.cache import cache_dir

    if any(flag in conf.get(OPTION, "") for flag in _USER_FLAGS):
        return None
    spark_home = _spark_home()
    key = _key(conf, spark_home) if spark_home and not _has_full_folder(conf, spark_home) else None
    if key is None:
        return None
    folder = cache_dir("jvm")
    _drop_orphan_recordings(folder)
    path = folder / f"spark-driver-{key}.jsa"
    if path.is_file():
        return Archive(path)
    if path.with_suffix(".unusable").exists():
        return None
    return Archive(path, folder / f"spark-driver-{key}.{os.getpid()}.recording")


def _has_full_folder(conf: dict[str, str], spark_home: str) -> bool:
    """Whether the driver's classpath holds a non-empty folder (a conf dir): the JVM cannot archive then."""
    folders = [os.environ.get("SPARK_CONF_DIR") or os.path.join(spark_home, "conf"),
               os.environ.get("HADOOP_CONF_DIR", ""), os.environ.get("YARN_CONF_DIR", "")]
    for entries in (os.environ.get("SPARK_DIST_CLASSPATH", ""), conf.get("spark.driver.extraClassPath", "")):
        folders += entries.split(os.pathsep)
    return any(folder and os.path.isdir(folder) and os.listdir(folder) for folder in folders)


def _key(conf: dict[str, str], spark_home: str) -> str | None:
    """A digest of what the archive depends on: the JDK build and the driver's classpath."""
    from orca_core import java

    try:
        jdk = Path(os.path.realpath(java.find().home))
    except java.JavaError:
        return None
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
    import psutil

    for recording in folder.glob("*.recording"):
        pid = recording.suffixes[-2].lstrip(".") if len(recording.suffixes) >= 2 else ""
        if not pid.isdigit() or not psutil.pid_exists(int(pid)):
            recording.unlink(missing_ok=True)
