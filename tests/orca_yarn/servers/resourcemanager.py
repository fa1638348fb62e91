"""A YARN ResourceManager REST server on loopback: cluster info, metrics, a capacity scheduler with
per-queue maximum allocations, application reports and the kill (state) call of /ws/v1/cluster."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_APP = re.compile(r"/ws/v1/cluster/apps/(?P<id>application_\d+_\d+)(?P<state>/state)?")


class ResourceManagerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, max_memory_mb: int = 8192, max_vcores: int = 4, queues: dict | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.max_memory_mb = max_memory_mb
        self.max_vcores = max_vcores
        self.queues = queues if queues is not None else {"default": (max_memory_mb, max_vcores)}
        self.apps: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def add_app(self, app_id: str, state: str = "RUNNING", final_status: str = "UNDEFINED", diagnostics: str = ""):
        self.apps[app_id] = {
            "id": app_id, "user": "orca", "name": "orca", "queue": "default", "state": state,
            "finalStatus": final_status, "diagnostics": diagnostics, "progress": 0.0,
            "trackingUrl": f"{self.url}/proxy/{app_id}/", "applicationType": "SPARK",
        }

    def start(self) -> ResourceManagerServer:
        self.thread = threading.Thread(target=self.serve_forever, name="resourcemanager", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self.thread:
            self.thread.join(timeout=10)

    def scheduler(self) -> dict:
        queues = [
            {"queueName": name, "queuePath": f"root.{name}", "type": "capacitySchedulerLeafQueueInfo",
             "capacity": 100.0 / len(self.queues), "maximumAllocation": {"memory": mb, "vCores": vcores}}
            for name, (mb, vcores) in self.queues.items()
        ]
        return {"scheduler": {"schedulerInfo": {
            "type": "capacityScheduler", "queueName": "root", "capacity": 100.0,
            "maximumAllocation": {"memory": self.max_memory_mb, "vCores": self.max_vcores},
            "queues": {"queue": queues},
        }}}


class _Handler(BaseHTTPRequestHandler):
    server: ResourceManagerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, what: str):
        self._reply(404, {"RemoteException": {"exception": "NotFoundException",
                                              "javaClassName": "org.apache.hadoop.yarn.webapp.NotFoundException",
                                              "message": f"java.lang.Exception: {what} not found"}})

    def do_GET(self):
        path = urlsplit(self.path).path.rstrip("/")
        with self.server.lock:
            self.server.requests.append(("GET", path))
        s = self.server
        if path in ("/ws/v1/cluster", "/ws/v1/cluster/info"):
            self._reply(200, {"clusterInfo": {"id": 1, "state": "STARTED", "haState": "ACTIVE",
                                              "resourceManagerVersion": "3.4.1", "hadoopVersion": "3.4.1"}})
        elif path == "/ws/v1/cluster/metrics":
            self._reply(200, {"clusterMetrics": {"totalMB": s.max_memory_mb * 4, "totalVirtualCores": s.max_vcores * 4,
                                                 "activeNodes": 4}})
        elif path == "/ws/v1/cluster/scheduler":
            self._reply(200, s.scheduler())
        elif (m := _APP.fullmatch(path)) and not m["state"]:
            app = s.apps.get(m["id"])
            self._reply(200, {"app": app}) if app else self._not_found(f"app with id: {m['id']}")
        elif (m := _APP.fullmatch(path)) and m["state"]:
            app = s.apps.get(m["id"])
            self._reply(200, {"state": app["state"]}) if app else self._not_found(f"app with id: {m['id']}")
        else:
            self._not_found(path)

    def do_PUT(self):
        path = urlsplit(self.path).path.rstrip("/")
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with self.server.lock:
            self.server.requests.append(("PUT", path))
        m = _APP.fullmatch(path)
        app = self.server.apps.get(m["id"]) if m and m["state"] else None
        if app is None:
            self._not_found(path)
            return
        if body.get("state") != "KILLED":
            self._reply(400, {"RemoteException": {"exception": "BadRequestException",
                                                  "message": "Only 'KILLED' is allowed as a target state."}})
            return
        if app["state"] not in ("FINISHED", "FAILED", "KILLED"):
            app.update(state="KILLED", finalStatus="KILLED", diagnostics="Application killed by user.")
        self._reply(200, {"state": app["state"]})
