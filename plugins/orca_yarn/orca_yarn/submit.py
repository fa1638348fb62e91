"""yarn-cluster: run this program again through `spark-submit --deploy-mode cluster` and wait for it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable

from orca_core.errors import ConfigError, LaunchError

APP_ID = re.compile(r"\b(application_\d+_\d+)\b")
TRACKING_URL = re.compile(r"tracking URL: (\S+)")
USER_EXIT = re.compile(r"User application exited with status (\d+)")


def program() -> tuple[str, list[str]]:
    """The script this process runs and its arguments, to run again inside the ApplicationMaster."""
    script = sys.argv[0] if sys.argv else ""
    if script in ("", "-c", "-") or not os.path.isfile(script):
        raise ConfigError(
            'cluster_mode="yarn-cluster" runs this program again inside YARN, so it must be a script file run as '
            '"python script.py"; for interactive sessions and python -c use cluster_mode="yarn-client"'
        )
    return os.path.abspath(script), list(sys.argv[1:])


def argv(spark_submit: str, conf: dict[str, str], py_files: tuple[str, ...], app_name: str) -> list[str]:
    """The spark-submit argv (without the program and its arguments)."""
    args = [spark_submit, "--master", "yarn", "--deploy-mode", "cluster", "--name", app_name]
    if py_files:
        args += ["--py-files", ",".join(py_files)]
    for key, value in sorted(conf.items()):
        args += ["--conf", f"{key}={value}"]
    return args


def exit_status(report: dict, submit_status: int) -> int:
    """The program's exit status from the application report, else spark-submit's."""
    if report.get("finalStatus") == "SUCCEEDED":
        return 0
    match = USER_EXIT.search(report.get("diagnostics") or "")
    if match:
        return int(match[1])
    if report.get("finalStatus") in ("FAILED", "KILLED"):
        return submit_status or 1
    return submit_status


class Submission:
    """A spark-submit process in its own session, its output echoed, the application id picked from it."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.args = args
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.app_id: str | None = None
        self.tracking_url: str | None = None

    def run(self, on_app: Callable[[str], None]) -> int:
        """Run spark-submit to its end; `on_app(app_id)` once the application id is known."""
        try:
            self.proc = subprocess.Popen(
                self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, text=True, errors="replace", start_new_session=True,
            )
        except OSError as error:
            raise LaunchError(f"cannot run {self.args[0]}: {error}") from error
        for line in self.proc.stdout:
            sys.stderr.write(line)
            if self.app_id is None and (match := APP_ID.search(line)):
                self.app_id = match[1]
                on_app(self.app_id)
            if self.tracking_url is None and (match := TRACKING_URL.search(line)) and match[1] != "N/A":
                self.tracking_url = match[1]
                print(f"orca: YARN application {self.app_id} tracking URL: {self.tracking_url}", file=sys.stderr,
                      flush=True)
        self.proc.stdout.close()
        return self.proc.wait()

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
