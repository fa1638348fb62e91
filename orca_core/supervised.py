"""The driver's side of `orca_core.supervisor`: start a command that dies with this process."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable

from orca_core.errors import LaunchError

_held: weakref.WeakSet = weakref.WeakSet()


def hold(proc: subprocess.Popen) -> None:
    """`proc` lives as long as this process holds its stdin pipe: a forked child closes its copy at once.

    Otherwise a child forked by the driver (multiprocessing, a notebook extension) keeps the pipe
    open after the driver closed it, and the process outlives the driver and stop waits out its timeout."""
    _held.add(proc)


def _close_held_pipes() -> None:
    for proc in list(_held):
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_close_held_pipes)

TREE = "ORCA_SUPERVISED_TREE"  # in the environment of a supervisor and of all it starts: finds them if it dies


class Supervised:
    """A command under a supervisor that holds our pipe: closing it (or dying) kills the tree, then
    removes the `cleanup` directory if given (after an unexpected death, once this process stops it or dies:
    the report names logs in it). `on_death` runs after an unexpected death has been reported."""

    def __init__(self, name: str, command: list[str], ready: str, log: str, env: dict[str, str] | None = None,
                 grace: float = 1.0, vital: dict[str, str] | None = None, cleanup: str | None = None,
                 on_death: Callable[[], None] | None = None):
        self.name = name
        self.cleanup = cleanup
        self.grace = grace
        self.command = command
        self.ready = ready
        self.log = log
        self.env = env
        self.vital = vital or {}  # descendant's name -> its log file
        self.on_death = on_death
        self.proc: subprocess.Popen | None = None
        self._tree = os.urandom(8).hex()
        self._stopping = False
        self._watcher: threading.Thread | None = None

    def start(self, timeout: float = 120.0) -> None:
        """Start and wait until the command prints its ready text; on failure raise with its output.

        Once it is ready, a watcher thread reports an unexpected end (see `_watch`)."""
        flags = [f"--vital={name}={log}" for name, log in self.vital.items()] + ["--linger"]
        flags += ["--cleanup", self.cleanup] if self.cleanup else []
        self.proc = subprocess.Popen(
            supervisor_command(self.ready, self.log, self.grace, *flags) + self.command, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env={**(os.environ if self.env is None else self.env), TREE: self._tree},
            start_new_session=True,
        )
        hold(self.proc)
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            answered = sel.select(timeout=timeout)
        first = self.proc.stdout.readline().decode(errors="replace").strip() if answered else ""
        if first == "READY":
            self._watcher = threading.Thread(target=self._watch, args=(self.proc,), name=f"orca-watch {self.name}",
                                             daemon=True)
            self._watcher.start()
            return
        detail = first + "\n" + self.proc.stdout.read().decode(errors="replace") if answered else (
            f"not ready within {timeout:.0f}s; last output:\n{tail(self.log)}"
        )
        self.stop()
        raise LaunchError(f"{self.name} failed to start (log: {self.log}):\n{detail.strip()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _watch(self, proc: subprocess.Popen) -> None:
        """Wait for the supervisor's DIED line, or its end; unless stopping, report it (a supervisor that died
        leaves its tree behind: end that too), then call `on_death`."""
        line = proc.stdout.readline().decode(errors="replace").strip()
        if self._stopping:
            return
        if line.startswith("DIED "):
            said = json.loads(line.removeprefix("DIED "))
            report_death(self.name, said["what"], said["log"], said["lines"])
        else:
            proc.wait()
            what = f"its supervisor (pid {proc.pid}, {exit_status(proc.returncode)})"
            report_death(self.name, what, self.log, tail(self.log, 10))
            self._end_orphans(proc)
        if self.on_death is not None:
            self.on_death()

    def _end_orphans(self, proc: subprocess.Popen) -> None:
        """If the supervisor did not end its tree (it was killed), end what is left of it: the processes of its
        process group, and those that carry its mark in their environment (they may have left the group)."""
        if proc.returncode == 0:
            return
        import psutil

        left = []
        for candidate in psutil.process_iter():
            try:
                if candidate.pid != os.getpid() and (os.getpgid(candidate.pid) == proc.pid
                                                     or candidate.environ().get(TREE) == self._tree):
                    left.append(candidate)
            except (psutil.Error, OSError):
                continue
        end_processes(left, self.grace)

    def stop(self, timeout: float = 30.0) -> None:
        """Kill the whole tree (also after its supervisor died) and wait for the supervisor; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            self._stopping = True
            close_and_wait(proc, timeout)
            if self._watcher is not None:
                self._watcher.join()
            proc.stdout.close()
            self._end_orphans(proc)


def end_processes(procs: list, grace: float) -> None:
    """SIGTERM the psutil processes `procs`, SIGKILL those left after `grace` seconds."""
    import psutil

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        _, procs = psutil.wait_procs(procs, timeout=wait)
        if not procs:
            return


def exit_status(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


def report_death(name: str, what: str, log: str, lines: str, fix: str | None = None) -> None:
    """Say on stderr that `name` died (`what` ended), with the last `lines` of `log`; the next Orca call raises
    `EngineDied`, saying `fix` (default: stop, then init again)."""
    from orca_core import state

    message = f"{name} died unexpectedly: {what} (log: {log})"
    state.died(message, fix or state.RESTART)  # first: who reads the line sees the error
    print(f"orca: {name} died unexpectedly: {what}; last lines of {log}:\n{lines.rstrip() or '(empty)'}",
          file=sys.stderr, flush=True)


def supervisor_command(ready: str, log: str, grace: float, *flags: str) -> list[str]:
    """The `orca_core.supervisor` argv that runs a command (appended after it) with these settings."""
    return [sys.executable, "-m", "orca_core.supervisor", "--ready", ready, "--log", log, "--grace", str(grace),
            *flags, "--"]


def close_and_wait(proc: subprocess.Popen, timeout: float) -> None:
    """Close the pipe `proc` watches (it exits when it ends), wait `timeout` seconds, then kill it."""
    try:
        proc.stdin.close()
    except (OSError, AttributeError):
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: str, lines: int = 40) -> str:
    """The last lines of a log file ("" if it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def bin_path(env: dict[str, str]) -> str:
    """PATH with this interpreter's bin directory first (Ray and Spark look up commands there)."""
    return os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
