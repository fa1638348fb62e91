"""The YARN ResourceManager REST API: cluster limits before a submit, application state and kill."""

from __future__ import annotations

from dataclasses import dataclass

from orca_core.errors import ConfigError, LaunchError
from orca_core.resources import spark_memory

FINAL_STATES = ("FINISHED", "FAILED", "KILLED")
MIN_OVERHEAD_MB = 384


@dataclass(frozen=True)
class Container:
    """One container Spark will ask YARN for."""

    role: str
    memory_mb: int
    vcores: int


def containers(conf: dict[str, str], deploy_mode: str) -> list[Container]:
    """The executor and ApplicationMaster containers a Spark conf asks YARN for, sized as Spark sizes them."""

    def mb(value: str) -> int:
        return spark_memory(value) >> 20

    def with_overhead(memory: int, overhead: str | None, factor: float = 0.1) -> int:
        return memory + (mb(overhead) if overhead else max(MIN_OVERHEAD_MB, int(memory * factor)))

    factor = float(conf.get("spark.executor.memoryOverheadFactor", "0.1"))
    executor = with_overhead(mb(conf["spark.executor.memory"]), conf.get("spark.executor.memoryOverhead"), factor)
    if conf.get("spark.executor.pyspark.memory"):
        executor += mb(conf["spark.executor.pyspark.memory"])
    if deploy_mode == "cluster":
        am = with_overhead(mb(conf.get("spark.driver.memory", "1g")), conf.get("spark.driver.memoryOverhead"))
        role, cores = "driver (ApplicationMaster)", conf.get("spark.driver.cores", "1")
    else:
        am = with_overhead(mb(conf.get("spark.yarn.am.memory", "512m")), conf.get("spark.yarn.am.memoryOverhead"))
        role, cores = "ApplicationMaster", conf.get("spark.yarn.am.cores", "1")
    return [Container("executor", executor, int(conf.get("spark.executor.cores", "1"))), Container(role, am, int(cores))]


class ResourceManager:
    """A client of /ws/v1/cluster on the first of `urls` that answers, with short timeouts."""

    def __init__(self, urls: list[str], user: str, timeout: float = 5.0, auth=None):
        if not urls:
            raise ConfigError("no ResourceManager address: set yarn.resourcemanager.webapp.address in yarn-site.xml "
                              "or pass resourcemanager_url=\"http://host:8088\"")
        self.urls = [u.rstrip("/") for u in urls]
        self.user = user
        self.timeout = timeout
        self.auth = auth

    def _call(self, method: str, path: str, json_body=None) -> dict:
        import requests

        errors = []
        for url in self.urls:
            try:
                res = requests.request(
                    method, f"{url}/ws/v1/cluster{path}", params={"user.name": self.user}, json=json_body,
                    headers={"Accept": "application/json"}, timeout=(self.timeout, self.timeout), auth=self.auth,
                )
            except requests.RequestException as error:
                errors.append(f"{url}: {error.__class__.__name__}: {error}")
                continue
            if res.status_code == 404:
                return {}
            if not res.ok:
                raise LaunchError(
                    f"the YARN ResourceManager at {url} answered {method} {path} with HTTP {res.status_code}: "
                    f"{_message(res)}"
                )
            try:
                return res.json()
            except ValueError as error:
                raise LaunchError(f"the YARN ResourceManager at {url} sent no JSON for {path}") from error
        raise LaunchError(
            f"cannot reach the YARN ResourceManager ({'; '.join(errors)}): check yarn.resourcemanager.webapp.address "
            "in yarn-site.xml, or pass resourcemanager_url=\"http://host:8088\""
        )

    def cluster_info(self) -> dict:
        return self._call("GET", "/info").get("clusterInfo", {})

    def limits(self, queue: str | None) -> tuple[int | None, int | None, str]:
        """(max memory MB, max vcores, where it came from) of one container in `queue`."""
        scheduler = self._call("GET", "/scheduler").get("scheduler", {}).get("schedulerInfo", {})
        if queue:
            found = _find_queue(scheduler, queue)
            if found is None:
                names = sorted(_queue_names(scheduler))
                raise ConfigError(
                    f"YARN has no queue {queue!r}; its queues: {', '.join(names) or 'none listed'}. "
                    "Pass one of them as queue=..."
                )
            memory, vcores = _resource(found.get("maximumAllocation"))
            if memory or vcores:
                return memory, vcores, f"queue {queue!r}"
        memory, vcores = _resource(scheduler.get("maximumAllocation"))
        if memory or vcores:
            return memory, vcores, "the cluster's scheduler"
        metrics = self._call("GET", "/metrics").get("clusterMetrics", {})
        return _int(metrics.get("totalMB")), _int(metrics.get("totalVirtualCores")), "the cluster's total resources"

    def check(self, containers: list[Container], queue: str | None, fallback: tuple[int | None, int | None]) -> None:
        """Raise ConfigError for any container larger than YARN can ever grant."""
        max_mb, max_vcores, source = self.limits(queue)
        if max_mb is None and max_vcores is None and any(fallback):
            (max_mb, max_vcores), source = fallback, "yarn-site.xml"
        for c in containers:
            if max_mb and c.memory_mb > max_mb:
                raise ConfigError(
                    f"the {c.role} container needs {c.memory_mb} MB (memory plus overhead), more than the "
                    f"{max_mb} MB maximum of {source}: YARN would never grant it and the application would wait in "
                    "ACCEPTED forever. Lower memory (or extra_executor_memory_for_ray / driver_memory), or use a "
                    "queue with larger containers"
                )
            if max_vcores and c.vcores > max_vcores:
                raise ConfigError(
                    f"the {c.role} container needs {c.vcores} vcores, more than the {max_vcores} maximum of "
                    f"{source}: YARN would never grant it. Lower cores (or driver_cores)"
                )

    def app(self, app_id: str) -> dict:
        """The application report (state, finalStatus, diagnostics, trackingUrl), {} if unknown."""
        return self._call("GET", f"/apps/{app_id}").get("app", {})

    def kill(self, app_id: str) -> None:
        self._call("PUT", f"/apps/{app_id}/state", {"state": "KILLED"})


def _message(res) -> str:
    try:
        body = res.json()
        return body.get("RemoteException", {}).get("message") or str(body)
    except ValueError:
        return res.text[:300]


def _children(queue: dict) -> list[dict]:
    queues = (queue.get("queues") or queue.get("childQueues") or {})
    children = queues.get("queue", []) if isinstance(queues, dict) else queues
    return children if isinstance(children, list) else [children]


def _find_queue(queue: dict, name: str) -> dict | None:
    for child in _children(queue):
        if name in (child.get("queueName"), child.get("queuePath")):
            return child
        found = _find_queue(child, name)
        if found is not None:
            return found
    return None


def _queue_names(queue: dict) -> list[str]:
    names = []
    for child in _children(queue):
        names.append(child.get("queueName", "?"))
        names += _queue_names(child)
    return names


def _resource(info) -> tuple[int | None, int | None]:
    if not isinstance(info, dict):
        return None, None
    return _int(info.get("memory")), _int(info.get("vCores"))


def _int(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
