"""The driver's control server: every Ray-on-Spark node holds a connection to it.

A node's supervisor connects and sends the context's secret; from then on the connection is
the node's lease on life. `close()` (at stop) half-closes every connection, the supervisors
kill their nodes and exit, and `close()` returns once each connection has ended. When the
driver dies the kernel closes the connections, with the same effect. A connection that ends
before `close()` is a node that died: its supervisor sends "DIED <what>" and the last lines of the
node's log first, and the driver reports it (see `orca_core.supervised.report_death`).

The server is also the gate of a barrier stage's tasks (`agree`): each task says whether its node
started, and all hear "ok" once every one did, or the first failure at once. (Spark's own
`BarrierTaskContext.allGather` polls once a second, which costs every start a second.)
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import selectors
import socket
import threading
import time


class ControlServer:
    def __init__(self, host: str):
        self.secret = secrets.token_hex(16)
        self._sock = socket.create_server((host, 0))
        self.address = f"{host}:{self._sock.getsockname()[1]}"
        self._conns: list[socket.socket] = []
        self._names: dict[socket.socket, str] = {}  # what each node's supervisor called itself
        self._retired: set[str] = set()  # nodes ended on purpose: their connection's end is no death
        self._gates: dict[str, _Gate] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._watched: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="orca-control", daemon=True)
        self._thread.start()
        self._watcher = threading.Thread(target=self._watch, name="orca-control-watch", daemon=True)
        self._watcher.start()

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._conns)

    def retire(self, name: str) -> None:
        """The node `name` is being ended on purpose (an autoscaler's scale-down): do not report it."""
        with self._lock:
            self._retired.add(name)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.settimeout(10)
            try:
                with conn.makefile("rb") as reader:  # closed, or the connection would outlive conn.close()
                    line = reader.readline(200).strip().decode(errors="replace")
                    secret, _, name = line.partition(" ")
                    said = json.loads(reader.readline(_SAID_LIMIT)) if name.startswith("gate ") else None
            except (OSError, ValueError):
                conn.close()
                continue
            if not hmac.compare_digest(secret, self.secret):
                conn.close()
                continue
            conn.settimeout(None)
            if said is not None:
                self._pass(conn, name, said)
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            with self._lock:
                if self._closed.is_set():
                    conn.close()
                else:
                    self._conns.append(conn)
                    self._names[conn] = name
                    os.write(self._wake_w, b"+")

    def _pass(self, conn: socket.socket, name: str, said: str) -> None:
        """A task at gate `name` ("gate KEY N") said `said`: answer every waiting task once the gate decides."""
        _, key, n = name.split(" ", 2)
        with self._lock:
            if self._closed.is_set():
                conn.close()
                return
            gate = self._gates.setdefault(key, _Gate(int(n)))
            if gate.add(conn, str(said)) == "ok":
                del self._gates[key]  # every task heard it; the next start is another stage

    def _watch(self) -> None:
        """Until `close()`: a connection that ends is a node that died; report it."""
        from orca_core.supervised import report_death

        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            said: dict[socket.socket, bytes] = {}
            while True:
                for key, _ in sel.select():
                    if key.fileobj == self._wake_r:
                        os.read(self._wake_r, 4096)
                        if self._closed.is_set():
                            return
                        with self._lock:
                            for conn in self._conns:
                                if conn not in said:
                                    said[conn] = b""
                                    sel.register(conn, selectors.EVENT_READ)
                        continue
                    conn = key.fileobj
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        data = b""
                    if data:
                        said[conn] += data
                        continue
                    sel.unregister(conn)
                    with self._lock:
                        if self._closed.is_set() or conn not in self._conns:
                            continue
                        self._conns.remove(conn)
                    conn.close()
                    text = said.pop(conn).decode(errors="replace")
                    with self._lock:
                        name = self._names.pop(conn, "")
                        if name in self._retired:
                            self._retired.discard(name)
                            continue
                    first, _, lines = text.partition("\n")
                    what = first.removeprefix("DIED ") if first.startswith("DIED ") else "its supervisor exited"
                    report_death("a Ray node on a Spark executor", what, "the node's log", lines)

    def close(self, timeout: float = 30.0) -> int:
        """End every node's lease and wait for the nodes to confirm; returns how many did not. Idempotent."""
        if self._closed.is_set():
            return 0
        self._closed.set()
        self._sock.close()
        os.write(self._wake_w, b"x")
        self._watcher.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        with self._lock:
            conns, self._conns = self._conns, []
            gates, self._gates = self._gates, {}
        for gate in gates.values():
            gate.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        pending = set(conns)
        with selectors.DefaultSelector() as sel:
            for conn in conns:
                sel.register(conn, selectors.EVENT_READ)
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    try:
                        data = key.fileobj.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(key.fileobj)
                        pending.discard(key.fileobj)
        for conn in conns:
            conn.close()
        return len(pending)


_SAID_CHARS = 4096  # of what a task says: JSON escapes each in at most 12 bytes
_SAID_LIMIT = 65536


class _Gate:
    """The tasks of one barrier stage: each says "ok" or why its node failed to start."""

    def __init__(self, n: int):
        self.n = n
        self.oks = 0
        self.failure: str | None = None
        self.waiting: list[socket.socket] = []

    def add(self, conn: socket.socket, said: str) -> str | None:
        """Count what `conn`'s task said; once decided, answer the waiting tasks and return the verdict."""
        if said == "ok":
            self.oks += 1
        elif self.failure is None:
            self.failure = said
        self.waiting.append(conn)
        verdict = self.failure if self.failure is not None else "ok" if self.oks >= self.n else None
        if verdict is not None:
            for waiting in self.waiting:
                try:
                    waiting.sendall(json.dumps(verdict).encode() + b"\n")
                except OSError:
                    pass
                waiting.close()
            self.waiting = []
        return verdict

    def close(self) -> None:
        for conn in self.waiting:
            conn.close()
        self.waiting = []


def agree(address: str, secret: str, key: str, n: int, said: str, timeout: float) -> str:
    """At gate `key` of `n` tasks, say "ok" or why this task failed; return "ok" once all `n` said "ok",
    else the first failure. Raises if the gate closes (the driver stopped) or does not decide in `timeout`."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"{secret} gate {key} {n}\n{json.dumps(said[:_SAID_CHARS])}\n".encode())
        sock.settimeout(timeout)
        line = sock.makefile("rb").readline()
    if not line:
        raise RuntimeError(f"the driver's control server at {address} closed the gate of the Ray nodes' start")
    return json.loads(line)
