"""The driver serves the packed environment to nodes that do not have it unpacked yet.

Executors of a cluster elsewhere fetch the archive only on a miss of their host's environment
cache (orca_core.shipping.nodecache), over HTTP from this server; each request carries the
context's token, so only the context's executors can fetch. Shipping the archive with
`spark.files` instead would copy it to every executor of every application, warm or not.
"""

from __future__ import annotations

import hmac
import secrets
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

TOKEN_HEADER = "X-Orca-Token"


class ArchiveServer:
    """Serve `files` (name -> local path) at `url` + name to requests that carry `token`."""

    def __init__(self, host: str, files: dict[str, str]):
        self.token = secrets.token_hex(16)
        token, served = self.token, dict(files)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), token):
                    self.send_error(403, "this server only serves the executors of its Orca context")
                    return
                path = served.get(unquote(self.path.lstrip("/")))
                if path is None:
                    self.send_error(404)
                    return
                with open(path, "rb") as f:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(f.seek(0, 2)))
                    self.end_headers()
                    f.seek(0)
                    try:
                        shutil.copyfileobj(f, self.wfile, 1 << 20)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="orca-env-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

