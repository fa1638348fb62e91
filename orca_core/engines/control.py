"""The driver's control server: every Ray-on-Spark node holds a connection to it.

A node's supervisor connects and sends the context's secret; from then on the connection is
the node's lease on life. `close()` (at stop) half-closes every connection, the supervisors
kill their nodes and exit, and `close()` returns once each connection has ended. When the
driver dies the kernel closes the connections, with the same effect.
"""

from __future__ import annotations

import hmac
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
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="orca-control", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._conns)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.settimeout(10)
            try:
                line = conn.makefile("rb").readline(200).strip().decode(errors="replace")
            except OSError:
                conn.close()
                continue
            if not hmac.compare_digest(line, self.secret):
                conn.close()
                continue
            conn.settimeout(None)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            with self._lock:
                if self._closed.is_set():
                    conn.close()
                else:
                    self._conns.append(conn)

    def close(self, timeout: float = 30.0) -> int:
        """End every node's lease and wait for the nodes to confirm; returns how many did not."""
        self._closed.set()
        self._sock.close()
        with self._lock:
            conns, self._conns = self._conns, []
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
