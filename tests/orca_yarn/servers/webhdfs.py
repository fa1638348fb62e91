"""A WebHDFS server on loopback backed by a local folder, speaking the NameNode/DataNode REST protocol.

Implements CREATE (307 redirect to a "datanode" URL on the same server, then 201), OPEN (307 too),
GETFILESTATUS, LISTSTATUS, MKDIRS, RENAME, SETPERMISSION and DELETE, with errors as RemoteException
JSON. It counts requests and bytes received, and can refuse writes under chosen paths with 403.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

PREFIX = "/webhdfs/v1"


class WebHdfsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.root = root
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str]] = []
        self.bytes_received = 0
        self.denied: set[str] = set()
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def local(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def ops(self, op: str) -> list[tuple[str, str, str]]:
        return [r for r in self.requests if r[1] == op]

    def start(self) -> WebHdfsServer:
        self.thread = threading.Thread(target=self.serve_forever, name="webhdfs", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self.thread:
            self.thread.join(timeout=10)


class _Error(Exception):
    def __init__(self, status: int, exception: str, message: str):
        super().__init__(message)
        self.status, self.exception, self.message = status, exception, message


def _status(path: str, name: str) -> dict:
    st = os.stat(path)
    return {
        "pathSuffix": name,
        "type": "DIRECTORY" if stat.S_ISDIR(st.st_mode) else "FILE",
        "length": 0 if stat.S_ISDIR(st.st_mode) else st.st_size,
        "owner": "hdfs", "group": "supergroup",
        "permission": format(stat.S_IMODE(st.st_mode), "o"),
        "accessTime": int(st.st_atime * 1000), "modificationTime": int(st.st_mtime * 1000),
        "blockSize": 134217728, "replication": 1, "fileId": st.st_ino, "childrenNum": 0,
    }


class _Handler(BaseHTTPRequestHandler):
    server: WebHdfsServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _reply(self, status: int, body: dict | None = None, headers: dict | None = None, raw: bytes | None = None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str):
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        op = params.get("op", "").upper()
        path = unquote(parts.path[len(PREFIX):]) if parts.path.startswith(PREFIX) else None
        body = self._body() if method in ("PUT", "POST") else b""
        with self.server.lock:
            self.server.requests.append((method, op, path or ""))
            self.server.bytes_received += len(body)
        try:
            if path is None:
                raise _Error(404, "IllegalArgumentException", f"not a WebHDFS path: {parts.path}")
            handler = getattr(self, f"_{op.lower()}", None)
            if handler is None:
                raise _Error(400, "UnsupportedOperationException", f"op={op} is not supported")
            handler(path, params, body)
        except _Error as error:
            self._reply(error.status, {"RemoteException": {
                "exception": error.exception, "javaClassName": f"org.apache.hadoop.{error.exception}",
                "message": error.message,
            }})

    def _check_write(self, path: str, params: dict) -> None:
        for denied in self.server.denied:
            if path == denied or path.startswith(denied.rstrip("/") + "/"):
                raise _Error(403, "AccessControlException",
                             f"Permission denied: user={params.get('user.name')}, access=WRITE, inode=\"{path}\"")

    def _missing(self, path: str) -> _Error:
        return _Error(404, "FileNotFoundException", f"File does not exist: {path}")

    # NameNode and DataNode operations

    def _create(self, path, params, body):
        self._check_write(path, params)
        local = self.server.local(path)
        if params.get("datanode") != "true":
            if os.path.exists(local) and params.get("overwrite", "false") != "true":
                raise _Error(403, "FileAlreadyExistsException", f"{path} for client already exists")
            query = "&".join(f"{k}={quote(v)}" for k, v in params.items() if k != "user.name")
            self._reply(307, headers={"Location": f"{self.server.url}{PREFIX}{quote(path)}?{query}&datanode=true"})
            return
        with self.server.lock:
            if os.path.exists(local) and params.get("overwrite", "false") != "true":
                raise _Error(403, "FileAlreadyExistsException", f"{path} for client already exists")
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as f:
                f.write(body)
            os.chmod(local, int(params.get("permission") or "644", 8))
        self._reply(201, headers={"Location": f"hdfs://{path}"})

    def _open(self, path, params, body):
        local = self.server.local(path)
        if not os.path.isfile(local):
            raise self._missing(path)
        if params.get("datanode") != "true":
            self._reply(307, headers={"Location": f"{self.server.url}{PREFIX}{quote(path)}?op=OPEN&datanode=true"})
            return
        with open(local, "rb") as f:
            self._reply(200, raw=f.read())

    def _getfilestatus(self, path, params, body):
        local = self.server.local(path)
        if not os.path.exists(local):
            raise self._missing(path)
        self._reply(200, {"FileStatus": _status(local, "")})

    def _liststatus(self, path, params, body):
        local = self.server.local(path)
        if not os.path.exists(local):
            raise self._missing(path)
        names = sorted(os.listdir(local)) if os.path.isdir(local) else [""]
        statuses = [_status(os.path.join(local, n), n) for n in names]
        self._reply(200, {"FileStatuses": {"FileStatus": statuses}})

    def _mkdirs(self, path, params, body):
        self._check_write(path, params)
        local = self.server.local(path)
        mode = int(params.get("permission") or "755", 8)
        with self.server.lock:
            if os.path.isfile(local):
                raise _Error(403, "FileAlreadyExistsException", f"Path is not a directory: {path}")
            if not os.path.isdir(local):
                os.makedirs(local)
                os.chmod(local, mode)
        self._reply(200, {"boolean": True})

    def _setpermission(self, path, params, body):
        self._check_write(path, params)
        local = self.server.local(path)
        if not os.path.exists(local):
            raise self._missing(path)
        os.chmod(local, int(params.get("permission") or "644", 8))
        self._reply(200, None)

    def _rename(self, path, params, body):
        self._check_write(path, params)
        destination = params.get("destination", "")
        self._check_write(destination, params)
        src, dst = self.server.local(path), self.server.local(destination)
        with self.server.lock:
            if os.path.isdir(dst):
                dst = os.path.join(dst, os.path.basename(src))
            ok = os.path.exists(src) and not os.path.exists(dst) and os.path.isdir(os.path.dirname(dst))
            if ok:
                os.rename(src, dst)
        self._reply(200, {"boolean": ok})

    def _delete(self, path, params, body):
        self._check_write(path, params)
        local = self.server.local(path)
        with self.server.lock:
            if not os.path.exists(local):
                ok = False
            elif os.path.isdir(local):
                if os.listdir(local) and params.get("recursive", "false") != "true":
                    raise _Error(403, "PathIsNotEmptyDirectoryException", f"{path} is non empty")
                shutil.rmtree(local)
                ok = True
            else:
                os.remove(local)
                ok = True
        self._reply(200, {"boolean": ok})
