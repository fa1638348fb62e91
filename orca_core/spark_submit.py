"""spark-submit, for the modes whose driver runs on the cluster: where Spark is, what program to
submit, the argv, and the submission process itself."""

from __future__ import annotations

import collections
import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable

from orca_core.errors import ConfigError, LaunchError

_PROPERTY = re.compile(r"(?P<key>[^=:\s]+)\s*[=:\s]\s*(?P<value>.*)")
GATEWAY = "PYSPARK_GATEWAY_PORT"  # set by spark-submit for the Python program it launches


def launched_by_spark_submit() -> bool:
    """True in a program spark-submit launched: its SparkContext exists already, in its JVM."""
    return GATEWAY in os.environ


def spark_home(option: str | None = None) -> str:
    """The Spark installation: the `spark_home` option, else $SPARK_HOME, else pip's pyspark."""
    home = option or os.environ.get("SPARK_HOME")
    if not home:
        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.origin:
            raise ConfigError('no Spark found: pip install pyspark, or pass spark_home="/opt/spark"')
        home = os.path.dirname(spec.origin)
    home = os.path.abspath(os.path.expanduser(home))
    if not os.path.isfile(os.path.join(home, "bin", "spark-submit")):
        source = "spark_home" if option else "SPARK_HOME" if os.environ.get("SPARK_HOME") else "pyspark"
        raise ConfigError(f"{source}={home!r} has no bin/spark-submit: point it at a Spark installation")
    return home


def conf_dir(home: str | None = None) -> str:
    """The folder Spark's launcher reads its configuration from: $SPARK_CONF_DIR, else `home`'s (or the
    installation's) conf folder."""
    return os.environ.get("SPARK_CONF_DIR") or os.path.join(home or spark_home(), "conf")


def spark_defaults(home: str | None = None) -> dict[str, str]:
    """The entries of the spark-defaults.conf in `conf_dir(home)`: `key value`, `key=value` or
    `key: value` lines, `#` comments. Empty if there is none."""
    try:
        with open(os.path.join(conf_dir(home), "spark-defaults.conf"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    entries = (_PROPERTY.fullmatch(line.strip()) for line in lines if line.strip()[:1] not in ("", "#", "!"))
    return {m["key"]: m["value"] for m in entries if m}


def program(cluster_mode: str) -> tuple[str, list[str]]:
    """The script this process runs and its arguments, to run again as the cluster's driver."""
    script = sys.argv[0] if sys.argv else ""
    if script in ("", "-c", "-", "-m") or not os.path.isfile(script):
        raise ConfigError(
            f'cluster_mode="{cluster_mode}" runs this program again as the driver on the cluster, so it must be a '
            'script file run as "python script.py"; in an interactive session or python -c use the client mode'
        )
    return os.path.abspath(script), list(sys.argv[1:])


def submit_argv(home: str, master: str, deploy_mode: str, name: str, py_files: tuple[str, ...], main: str,
                args: list[str]) -> tuple[str, ...]:
    """`spark-submit --master ... [--py-files a,b] main args...`: the conf goes in a properties file
    (see `Submission`), never on the command line, where every local user could read it."""
    argv = [os.path.join(home, "bin", "spark-submit"), "--master", master, "--deploy-mode", deploy_mode,
            "--name", name]
    if py_files:
        argv += ["--py-files", ",".join(py_files)]
    return (*argv, main, *args)


class Submission:
    """A spark-submit process in its own session, its output echoed to stderr and its tail kept.

    `conf` reaches spark-submit as a properties file private to the user (0600 in a 0700 folder,
    removed when spark-submit ends), beside `$SPARK_HOME/conf/spark-defaults.conf`.
    """

    def __init__(self, argv: tuple[str, ...], env: dict[str, str], conf: dict[str, str] | None = None,
                 tail_lines: int = 50):
        self.argv = list(argv)
        self.env = env
        self.conf = dict(conf or {})
        self.proc: subprocess.Popen | None = None
        self.properties: str | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)

    def run(self, on_line: Callable[[str], None] | None = None) -> int:
        """Run spark-submit to its end, calling `on_line` with every line it prints; its exit status."""
        import shutil
        import tempfile

        from orca_core.spark_security import write_properties

        folder = tempfile.mkdtemp(prefix="orca-submit-")
        try:
            self.properties = write_properties(os.path.join(folder, "spark.conf"), self.conf)
            argv = [self.argv[0], "--properties-file", self.properties, "--load-spark-defaults", *self.argv[1:]]
            try:
                self.proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.env, text=True, errors="replace", start_new_session=True,
                )
            except OSError as error:
                raise LaunchError(f"cannot run {self.argv[0]}: {error}") from error
            for line in self.proc.stdout:
                sys.stderr.write(line)
                self.tail.append(line)
                if on_line is not None:
                    on_line(line)
            self.proc.stdout.close()
            return self.proc.wait()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def failure(self, status: int) -> LaunchError:
        return LaunchError(f"spark-submit exited with status {status}:\n{''.join(self.tail)}")

    def stop(self, timeout: float = 10.0) -> None:
        """End spark-submit and its JVM if still running; idempotent."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                continue
