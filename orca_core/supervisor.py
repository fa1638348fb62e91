"""Owns a process tree on behalf of a driver and kills all of it when the driver goes.

Run as `python -m orca_core.supervisor --ready TEXT --log FILE [WATCHES] -- COMMAND...`. It
becomes a child subreaper (so descendants that daemonize are re-parented to it, not to PID 1),
starts COMMAND, writes "READY" to stdout once COMMAND prints TEXT (or "FAILED" and COMMAND's
last output if it exits first), then waits until one of its watches fires:

- stdin closes (unless `--no-stdin`): the driver closes it at stop, and the kernel closes it
  when the driver dies, even by SIGKILL;
- `--watch-pid PID` exits (e.g. the Spark executor that launched a Ray node);
- `--control HOST:PORT` closes: a connection to the driver's control server, which sends
  `$ORCA_CONTROL_SECRET` first; the server closes it at stop, the kernel when the driver dies;
- COMMAND exits, or SIGTERM arrives;
- after READY, a descendant named by `--vital NAME[=LOG]` exits (e.g. the raylet of a Ray head).

Then every descendant gets SIGTERM, and SIGKILL after a grace period, and `--cleanup DIR` is removed.
When what ended is COMMAND or a vital descendant (or the watched process), it first writes
`DIED {"what": ..., "log": ..., "lines": ...}` (JSON) to stdout: what died, and the last lines of its
log (the vital's LOG, else COMMAND's), read before anything is removed, for the driver to report.
With `--linger` it then keeps DIR (the logs the report names) until stdin closes or SIGTERM arrives.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import threading

from orca_core.supervised import exit_status

PR_SET_CHILD_SUBREAPER = 36
READY, STOP, DIED = b"R", b"\0", b"D"  # STOP: a byte no text holds
REPORT_LINES = 10  # lines of the log a death report carries
CLEANUP_TIMEOUT = 30.0


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
            os.write(wake, READY)
    child.wait()
    if not said.is_set():
        said.set()
        _say(f"FAILED exit status {child.returncode}\n" + "".join(tail))
        os.write(wake, STOP)  # nothing left to supervise
    else:
        os.write(wake, DIED + f"{os.path.basename(child.args[0])} (pid {child.pid}, {exit_status(child.returncode)})".encode())


def _say(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


def _watches(args, wake: int) -> tuple[list[int], int | None]:
    """File descriptors that become readable (or hang up) when the supervised tree must go, and the
    control connection's (which also hears what died)."""
    import socket

    fds, control = [wake], None
    if args.stdin:
        fds.append(0)
    if args.watch_pid:
        fds.append(os.pidfd_open(args.watch_pid))
    if args.control:
        host, _, port = args.control.rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        name = f" {args.control_name}" if args.control_name else ""
        sock.sendall(f"{os.environ.get('ORCA_CONTROL_SECRET', '')}{name}\n".encode())
        sock.settimeout(None)
        control = os.dup(sock.fileno())
        fds.append(control)
        sock.close()
    return fds, control


def _vitals(logs: dict[str, str | None]) -> dict[int, tuple[str, str | None]]:
    """pidfd -> ("name (pid N)", its log) of every descendant named in `logs` (name -> log file or None)."""
    import psutil

    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() in logs:
                found[os.pidfd_open(proc.pid)] = (f"{proc.name()} (pid {proc.pid})", logs[proc.name()])
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
    return found


def _wait(fds: list[int], vital: dict[str, str | None], watched: int | None = None) -> tuple[str, str | None] | None:
    """Return when any watch fires: what died unexpectedly and its log (None: COMMAND's), or None for a stop.

    Data on stdin or the control connection is not an event. The wake pipe (`fds[0]`) carries
    READY (COMMAND is up: say so and watch its vital descendants), STOP, or DIED and what died."""
    vitals: dict[int, tuple[str, str | None]] = {}
    with selectors.DefaultSelector() as sel:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fd in vitals:
                    what, log = vitals[key.fd]
                    return f"{what} exited", log
                if key.fd == fds[0]:
                    message = os.read(key.fd, 4096)
                    if message.startswith(READY):
                        vitals = _vitals(vital)
                        for fd in vitals:
                            sel.register(fd, selectors.EVENT_READ)
                        _say("READY\n")
                        message = message[len(READY):]
                        if not message:
                            continue
                    return (message[len(DIED):].decode(), None) if message.startswith(DIED) else None
                try:
                    if not os.read(key.fd, 4096):
                        return None
                except OSError:  # a pidfd is not readable: the process it watches exited
                    return f"the process it watches (pid {watched}) exited", None


def _linger(stdin: int, wake: int) -> None:
    """After a death: wait until stdin closes or SIGTERM arrives (the driver read the logs, or is gone)."""
    with selectors.DefaultSelector() as sel:
        sel.register(stdin, selectors.EVENT_READ)
        sel.register(wake, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                data = os.read(key.fd, 4096)
                if key.fd == stdin and not data or key.fd == wake and STOP in data:
                    return


def _last_lines(path: str, count: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(collections.deque(f, maxlen=count))
    except OSError:
        return ""


def _remove(folder: str) -> None:
    """Remove `folder`, again while something still writes into it as it goes, for up to CLEANUP_TIMEOUT s."""
    import shutil

    from orca_core.ports import wait_for

    def gone() -> bool:
        shutil.rmtree(folder, ignore_errors=True)
        return not os.path.lexists(folder)

    try:
        wait_for(gone, CLEANUP_TIMEOUT, f"{folder} to be removed", interval=0.1)
    except TimeoutError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orca-supervisor")
    parser.add_argument("--ready", required=True, help="text COMMAND prints once it is ready")
    parser.add_argument("--log", required=True, help="file that receives COMMAND's output")
    parser.add_argument("--grace", type=float, default=1.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("--no-stdin", dest="stdin", action="store_false", help="do not watch stdin")
    parser.add_argument("--watch-pid", type=int, help="stop when this process exits")
    parser.add_argument("--control", metavar="HOST:PORT", help="stop when this connection closes")
    parser.add_argument("--control-name", help="the name the control server knows this connection by")
    parser.add_argument("--cleanup", metavar="DIR", help="remove this directory after the tree is gone")
    parser.add_argument("--linger", action="store_true",
                        help="after a death, keep DIR until stdin closes or SIGTERM arrives")
    parser.add_argument("--vital", action="append", default=[], metavar="NAME[=LOG]",
                        help="stop, saying so with the last lines of LOG, when a descendant of this name exits "
                             "(repeatable)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    vital = {name: log or None for name, _, log in (v.partition("=") for v in args.vital)}
    _become_subreaper()
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only stdin decides; the driver's Ctrl-C is not ours
    wake_r, wake_w = os.pipe()
    signal.signal(signal.SIGTERM, lambda *_: os.write(wake_w, STOP))
    watches, control = _watches(args, wake_r)
    with open(args.log, "a", encoding="utf-8") as log:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        said = threading.Event()
        tail = collections.deque(maxlen=40)
        pump = threading.Thread(target=_pump, args=(child, args.ready, log, tail, said, wake_w), daemon=True)
        pump.start()
        died = _wait(watches, vital, args.watch_pid)
        if died:
            what, vital_log = died
            lines = _last_lines(vital_log, REPORT_LINES) if vital_log else "".join(list(tail)[-REPORT_LINES:])
            _say("DIED " + json.dumps({"what": what, "log": vital_log or args.log, "lines": lines}) + "\n")
            if control is not None:  # the driver hears it there, with the last lines of the log
                try:
                    os.write(control, f"DIED {what}\n{lines}".encode())
                except OSError:
                    pass
        kill_tree(args.grace)
        pump.join(timeout=5)
    if died and args.linger and args.stdin:
        _linger(0, wake_r)
    if args.cleanup:
        _remove(args.cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
