"""Owns a process tree on behalf of a driver and kills all of it when the driver goes.

Run as `python -m orca_core.supervisor --ready TEXT --log FILE -- COMMAND...`. It becomes a
child subreaper (so descendants that daemonize are re-parented to it, not to PID 1), starts
COMMAND, writes "READY" to stdout once COMMAND prints TEXT (or "FAILED" and COMMAND's last
output if it exits first), then waits for its stdin to close: the driver closes it at stop,
and the kernel closes it when the driver dies, even by SIGKILL. Then every descendant gets
SIGTERM, and SIGKILL after a grace period.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import threading

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_tree(grace: float) -> None:
    """SIGTERM every descendant, SIGKILL what is left after `grace` seconds, reap them all."""
    import psutil

    me = psutil.Process()
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        procs = me.children(recursive=True)
        if not procs:
            break
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=wait)
        _reap()
    _reap()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _pump(child: subprocess.Popen, ready: str, log, tail: collections.deque, said: threading.Event, wake: int) -> None:
    for raw in child.stdout:
        line = raw.decode(errors="replace")
        log.write(line)
        log.flush()
        tail.append(line)
        if not said.is_set() and ready in line:
            said.set()
            _say("READY\n")
    child.wait()
    if not said.is_set():
        said.set()
        _say(f"FAILED exit status {child.returncode}\n" + "".join(tail))
        os.write(wake, b"x")  # nothing left to supervise


def _say(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


def _wait_for_eof(wake: int) -> None:
    """Return when stdin reaches EOF (the driver is gone or stopping) or `wake` is written."""
    with selectors.DefaultSelector() as sel:
        sel.register(0, selectors.EVENT_READ)
        sel.register(wake, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fd == wake:
                    return
                try:
                    if not os.read(0, 4096):
                        return
                except OSError:
                    return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orca-supervisor")
    parser.add_argument("--ready", required=True, help="text COMMAND prints once it is ready")
    parser.add_argument("--log", required=True, help="file that receives COMMAND's output")
    parser.add_argument("--grace", type=float, default=1.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    _become_subreaper()
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only stdin decides; the driver's Ctrl-C is not ours
    wake_r, wake_w = os.pipe()
    signal.signal(signal.SIGTERM, lambda *_: os.write(wake_w, b"x"))
    with open(args.log, "a", encoding="utf-8") as log:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        said = threading.Event()
        tail = collections.deque(maxlen=40)
        pump = threading.Thread(target=_pump, args=(child, args.ready, log, tail, said, wake_w), daemon=True)
        pump.start()
        _wait_for_eof(wake_r)
        kill_tree(args.grace)
        pump.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
