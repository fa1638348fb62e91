"""A Kubernetes API server on loopback for the tests: kmock's emulator, plus what Orca relies on.

On top of kmock's object store and watches it fills server-side metadata (uid, namespace,
resourceVersion, creationTimestamp), refuses objects in namespaces that do not exist, filters
lists and watches by label and field selectors, deletes collections, serves pod logs, answers
SelfSubjectAccessReviews from a deny list, can refuse everything with 403, and runs a garbage
collector that deletes objects all of whose ownerReferences point at deleted owners.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid
from datetime import datetime, timezone

import aiohttp.web
import attrs
import kmock
from kmock._internal.k8s import KubernetesError

NAMESPACES = kmock.resource("", "v1", "namespaces")


def _match_labels(selector: str | None, labels: dict) -> bool:
    for term in (t.strip() for t in (selector or "").split(",") if t.strip()):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _match_fields(selector: str | None, obj: dict) -> bool:
    for term in (t.strip() for t in (selector or "").split(",") if t.strip()):
        key, value = term.split("=", 1)
        node = obj
        for part in key.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if node != value.lstrip("="):
            return False
    return True


def selected(request, obj: dict) -> bool:
    meta = obj.get("metadata", {})
    return (_match_labels(request.params.get("labelSelector"), meta.get("labels") or {})
            and _match_fields(request.params.get("fieldSelector"), obj))


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    forbidden: bool = False
    denied: set = attrs.field(factory=set)  # {(verb, resource)} that SelfSubjectAccessReviews deny
    kuberay: bool = True
    logs: dict = attrs.field(factory=dict)  # {(namespace, pod): bytes}
    _versions: itertools.count = attrs.field(factory=lambda: itertools.count(1))

    async def _handle(self, request):
        if self.forbidden:
            raise KubernetesError(403, "Forbidden", 'User "system:anonymous" cannot do anything here')
        parts = request.url.path.strip("/").split("/")
        if request.method == "GET" and parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 4:
            return await self._namespace(parts[3])  # kmock reads this path as a namespace, not an object
        res = request.resource
        if res is None:
            if request.url.path == "/version/":  # the kubernetes client asks with a trailing slash
                return aiohttp.web.json_response(await self._serve_server_version(request))
            return await super()._handle(request)
        if res.group == "ray.io" and not self.kuberay:
            raise KubernetesError(404, "NotFound", "the server could not find the requested resource")
        if res.plural == "selfsubjectaccessreviews":
            attrs_ = request.data["spec"]["resourceAttributes"]
            allowed = (attrs_["verb"], attrs_["resource"]) not in self.denied
            return aiohttp.web.json_response({**request.data, "status": {"allowed": allowed}}, status=201)
        if res.plural == "pods" and request.subresource == "log":
            return aiohttp.web.Response(body=self.logs.get((request.namespace, request.name), b""),
                                        content_type="text/plain")
        if request.action == kmock.action.WATCH and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket_watch(request)
        if request.method == "DELETE" and request.name is None:
            return aiohttp.web.json_response(await self._delete_collection(request))
        if request.action == kmock.action.CREATE:
            meta = request.data.setdefault("metadata", {})
            namespace = request.namespace or meta.get("namespace")
            if namespace and res != NAMESPACES and (NAMESPACES, None, namespace) not in self.objects:
                raise KubernetesError(404, "NotFound", f'namespaces "{namespace}" not found')
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if namespace:
                meta["namespace"] = namespace
            meta.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._versions)),
                        creationTimestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
            if res.plural == "pods":
                request.data.setdefault("status", {"phase": "Pending"})
        elif request.action == kmock.action.UPDATE and isinstance(request.data, dict):
            request.data.setdefault("metadata", {})["resourceVersion"] = str(next(self._versions))
        try:
            return await super()._handle(request)
        finally:
            if request.action == kmock.action.DELETE:
                asyncio.get_running_loop().create_task(self._collect_garbage())

    async def _namespace(self, name: str):
        async with self._lock:
            obj = self.objects[NAMESPACES, None, name] if (NAMESPACES, None, name) in self.objects else None
            if obj is None or obj.deleted:
                raise KubernetesError(404, "NotFound", f'namespaces "{name}" not found')
            return aiohttp.web.json_response({"apiVersion": "v1", "kind": "Namespace", **obj.raw})

    async def _serve_list(self, request):
        listed = await super()._serve_list(request)
        listed["items"] = [o for o in listed["items"] if selected(request, o)]
        listed["metadata"]["resourceVersion"] = str(next(self._versions))
        return listed

    async def _serve_watch(self, request):
        async for event in super()._serve_watch(request):
            if not isinstance(event, dict) or selected(request, event.get("object", {})):
                yield event

    async def _websocket_watch(self, request):
        """A watch over a websocket, as the fabric8 client in Spark asks for: one event per message."""
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        ws = aiohttp.web.WebSocketResponse(protocols=offered)
        await ws.prepare(request._raw_request)
        try:
            async for event in self._serve_watch(request):
                if isinstance(event, dict):
                    await ws.send_str(json.dumps(event))
        finally:
            await ws.close()
        return ws

    async def _delete_collection(self, request) -> dict:
        gone = []
        async with self._lock:
            for (res, ns, _), obj in list(self.objects.items()):
                if res == request.resource and ns == request.namespace and not obj.deleted and selected(request, obj.raw):
                    raw = obj.raw
                    obj.delete()
                    gone.append(raw)
                    await self._buses[res].put({"type": "DELETED", "object": raw})
        asyncio.get_running_loop().create_task(self._collect_garbage())
        return {"kind": "List", "apiVersion": "v1", "items": gone}

    async def _collect_garbage(self) -> None:
        """Kubernetes' garbage collector: delete dependents none of whose owners exist, until none is left."""
        while True:
            async with self._lock:
                live = {obj.raw.get("metadata", {}).get("uid") for obj in self.objects.values() if not obj.deleted}
                orphans = [
                    (res, obj) for (res, _, _), obj in self.objects.items()
                    if not obj.deleted and (refs := obj.raw.get("metadata", {}).get("ownerReferences"))
                    and not any(ref.get("uid") in live for ref in refs)
                ]
                for res, obj in orphans:
                    raw = obj.raw
                    obj.delete()
                    await self._buses[res].put({"type": "DELETED", "object": raw})
            if not orphans:
                return


class LoopbackCluster:
    """An ApiServer served on 127.0.0.1 from a background thread, with a kubeconfig pointing at it."""

    def __init__(self, namespaces=("default",)):
        self.handler = ApiServer()
        self._namespaces = namespaces
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopback-apiserver", daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for name in ("v1/pods", "v1/configmaps", "v1/services", "v1/secrets", "v1/serviceaccounts",
                     "v1/namespaces", "ray.io/v1/rayclusters"):
            self.handler.resources[name] = {}
        for ns in self._namespaces:
            self.handler.objects[NAMESPACES, None, ns] = {"metadata": {"name": ns, "uid": str(uuid.uuid4())}}
        async with self.handler, kmock.Server(self.handler) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()  # end open watches, so the server closes at once

    def start(self) -> LoopbackCluster:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the loopback API server did not start")
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def kubeconfig(self, path, namespace: str | None = None, url: str | None = None) -> str:
        context = {"cluster": "loopback", "user": "tester"}
        if namespace:
            context["namespace"] = namespace
        with open(path, "w", encoding="utf-8") as f:
            json.dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
                "clusters": [{"name": "loopback", "cluster": {"server": url or self.url}}],
                "contexts": [{"name": "loopback", "context": context}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
            }, f)
        return str(path)

    def run(self, fn):
        """Run `fn()` on the server's loop (objects are only touched there) and return its result."""
        async def call():
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def live(self, plural: str, namespace: str = "default") -> dict[str, dict]:
        """Live objects of a resource in a namespace, by name."""
        def collect():
            return {name: obj.raw for (res, ns, name), obj in self.handler.objects.items()
                    if res.plural == plural and ns == namespace and not obj.deleted}
        return self.run(collect)


def executor_pod(template: dict, name: str) -> dict:
    """The pod Spark's executor builder makes from a pod template: its metadata, plus Spark's container."""
    meta = {**template["metadata"], "name": name}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "spark-kubernetes-executor", "image": "repo/spark-py:4"}]}}


class Controller:
    """Plays the cluster's controllers for one resource: `react(obj)` returns the status patches to apply,
    in order, to each object that appears (a kubelet running pods, the KubeRay operator...)."""

    def __init__(self, cluster: LoopbackCluster, plural: str, react, namespace: str = "default"):
        from kubernetes import client

        self.cluster = cluster
        self.plural = plural
        self.react = react
        self.namespace = namespace
        self.api = client.ApiClient(client.Configuration(host=cluster.url))
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._run, name=f"controller-{plural}", daemon=True)

    def start(self) -> Controller:
        self._thread.start()
        return self

    def _stream(self):
        from kubernetes import client, watch

        if self.plural == "pods":
            return watch.Watch().stream(client.CoreV1Api(self.api).list_namespaced_pod, self.namespace)
        return watch.Watch().stream(client.CustomObjectsApi(self.api).list_namespaced_custom_object,
                                    "ray.io", "v1", self.namespace, self.plural)

    def _patch(self, name: str, body: dict) -> None:
        from kubernetes import client

        if self.plural == "pods":
            client.CoreV1Api(self.api).patch_namespaced_pod_status(name, self.namespace, body)
        else:
            client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                "ray.io", "v1", self.namespace, self.plural, name, body)

    def _run(self) -> None:
        try:
            for event in self._stream():
                obj = event["object"]
                obj = obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)
                name = obj["metadata"]["name"]
                if event["type"] != "ADDED" or name in self.seen:
                    continue
                self.seen.append(name)
                for patch in self.react(obj) or ():
                    self._patch(name, patch)
        except Exception:  # the server stopped at the end of the test
            return


class LocalKubelet:
    """Runs the executor pods Spark creates as local JVMs, as the executor image's entrypoint would,
    reports them Running, and kills them when their pod is deleted."""

    def __init__(self, cluster: LoopbackCluster, spark_home: str, namespace: str = "default"):
        from kubernetes import client

        self.cluster = cluster
        self.spark_home = spark_home
        self.namespace = namespace
        self.core = client.CoreV1Api(client.ApiClient(client.Configuration(host=cluster.url)))
        self.procs: dict = {}
        self._thread = threading.Thread(target=self._run, name="local-kubelet", daemon=True)

    def start(self) -> LocalKubelet:
        self._thread.start()
        return self

    def _command(self, pod: dict) -> tuple[list[str], dict]:
        env = {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}
        opts = [v for k, v in sorted(env.items()) if k.startswith("SPARK_JAVA_OPT_")]
        argv = ["java", f"-Xmx{env['SPARK_EXECUTOR_MEMORY']}", *opts, "-cp", f"{self.spark_home}/jars/*",
                "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
                "--driver-url", env["SPARK_DRIVER_URL"], "--executor-id", env["SPARK_EXECUTOR_ID"],
                "--cores", env["SPARK_EXECUTOR_CORES"], "--app-id", env["SPARK_APPLICATION_ID"],
                "--hostname", "127.0.0.1", "--resourceProfileId", env.get("SPARK_RESOURCE_PROFILE_ID", "0"),
                "--podName", pod["metadata"]["name"]]
        import os

        keep = {k: v for k, v in env.items() if not k.startswith("SPARK_JAVA_OPT_") and k != "SPARK_LOCAL_DIRS"}
        return argv, {**os.environ, **keep, "SPARK_HOME": self.spark_home}

    def _run(self) -> None:
        import subprocess

        from kubernetes import watch

        try:
            for event in watch.Watch().stream(self.core.list_namespaced_pod, self.namespace,
                                              label_selector="spark-role=executor"):
                pod = self.core.api_client.sanitize_for_serialization(event["object"])
                name = pod["metadata"]["name"]
                if event["type"] == "ADDED" and name not in self.procs:
                    argv, env = self._command(pod)
                    self.procs[name] = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    self.core.patch_namespaced_pod_status(name, self.namespace, {"status": {
                        "phase": "Running", "podIP": "127.0.0.1"}})
                elif event["type"] == "DELETED" and name in self.procs:
                    self._kill(name)
        except Exception:  # the server stopped at the end of the test
            return

    def _kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def running(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def stop(self) -> None:
        for name in list(self.procs):
            self._kill(name)
