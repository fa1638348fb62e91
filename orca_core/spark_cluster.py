"""The shared layer of the Spark cluster modes (standalone, YARN, Kubernetes, and third-party ones).

`SparkClusterBackend` owns what every such mode means the same way: executor sizing, driver
sizing, memory for Ray on Spark, the shipped Python environment, `extra_python_lib` as py-files,
and the spark-submit of the cluster deploy mode. A mode subclasses it, sets a few class
attributes, and adds only what is its own (a master URL, a cluster file system, pods):

    class MyBackend(SparkClusterBackend):
        def plan(self):
            return self.spark_plan(master="spark://head:7077")

`plan()` stays pure: everything `start()` needs is in the `LaunchPlan` it returns.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import replace
from pathlib import Path

from orca_core import pylib, spark_security, spark_submit
from orca_core.backend import (
    EXECUTOR_GPU,
    INITIAL_EXECUTORS,
    RAY_ON_SPARK_OPTIONS,
    ClusterBackend,
    dynamic_allocation,
    max_executors,
    ray_gpu_conf,
    ray_on_spark_plan,
)
from orca_core.errors import CacheError, ConfigError, LaunchError
from orca_core.plan import UNPACKED, LaunchPlan, RayPlan, ShippedEnv
from orca_core.records import Option
from orca_core.resources import jvm_size, parse_memory

MIN_OVERHEAD = 384 << 20  # Spark's spark.executor.memoryOverhead floor
OVERHEAD_FACTOR = 0.1  # Spark's default spark.executor.memoryOverheadFactor
RAY_MEMORY_FACTOR = 0.3  # default share of `memory` reserved for Ray on Spark in a container

SHIPPING_OPTIONS = (
    Option("ship_python_env", bool, False, help="pack this Python environment and ship it to the executors"),
    Option("penv_archive", str, help="a packed environment (.tar.gz/.zip) to ship as it is; a URI "
           "(hdfs://, s3a://...) is used where it lies"),
    Option("conda_name", str, help="the conda environment to pack and ship instead of the running one"),
    Option("keep_spark_jars", bool, False, help="keep pyspark's jars in the shipped environment"),
)
SPARK_CLUSTER_OPTIONS = (
    Option("driver_cores", int, help="cores of the driver (default: Spark's, 1)"),
    Option("driver_memory", (int, str), help="memory of the driver, e.g. '4g' (default: Spark's, 1g)"),
    *SHIPPING_OPTIONS,
    Option("driver_host", str, help="the address executors and Ray nodes on other hosts reach this driver at "
           "(spark.driver.host; default: this host's address on the route to the cluster)"),
    *RAY_ON_SPARK_OPTIONS,
)
NODE_ENV_OPTIONS = (
    Option("node_env_cache", (bool, str), True, help="executors run the shipped environment unpacked once per "
           "host in this folder on the nodes, shared by executors and applications (True: ~/.cache/orca/node-envs "
           "of the nodes' user; False: unpacked by Spark into every executor's work dir)"),
    Option("node_env_cache_size", (int, str), "20g", help="size cap of the nodes' environment cache: beyond it the "
           "least recently used environments that no application runs are removed"),
)
CONTAINER_OPTIONS = (
    Option("extra_executor_memory_for_ray", (int, str), help="container memory for Ray on Spark beside the "
           "executor JVM and Spark's overhead, e.g. '2g'; also the default object store size "
           f"(default: {RAY_MEMORY_FACTOR:.0%} of `memory`)"),
)


class ShipsPythonEnv(ClusterBackend):
    """Ships the Python environment to a cluster's executors (the options of `SHIPPING_OPTIONS` and
    `NODE_ENV_OPTIONS`): packed once per content key, unpacked by Spark per executor, or run from each
    host's cache of unpacked environments (orca_core.shipping.nodecache).

    `node_python` is the executors' Python when nothing ships (None: this interpreter's path);
    `ships_by_default` ships this environment unless told otherwise (nodes that cannot have it);
    `deploy_mode` "cluster" means the driver runs on the cluster, with the shipped Python too.
    """

    deploy_mode = "client"
    node_python: str | None = None
    ships_by_default = False
    env_server = None  # the ArchiveServer `serve_env` runs

    def executor_python(self) -> str:
        return self.node_python or sys.executable

    def shipping_conf(self, env_uri=None) -> tuple[ShippedEnv | None, dict[str, str], tuple[str, ...]]:
        """The environment to ship (None: the nodes' Python), the conf that runs it on the executors, and
        the archive Spark unpacks for it (none when the executors run it from their host's cache)."""
        env, conf = self.python_env(env_uri), {}
        if env is not None and self.caches_envs_on_nodes(env):
            env, conf = self.node_env(env)
        conf["spark.pyspark.python"] = env.executor_python if env else self.executor_python()
        if self.deploy_mode == "client":
            conf["spark.pyspark.driver.python"] = sys.executable
        unpacked = (f"{env.archive}#{UNPACKED}",) if env and not env.launcher else ()
        return env, conf, unpacked

    def python_env(self, env_uri=None) -> ShippedEnv | None:
        """The environment to ship, named (by content key) without packing; None to use the nodes' Python."""
        o = self.options
        given, conda = o.get("penv_archive"), o.get("conda_name")
        if given and o.get("ship_python_env"):
            raise ConfigError("pass either penv_archive (an archive you packed) or ship_python_env=True, not both")
        if not (given or conda or o.get("ship_python_env") or self.ships_by_default):
            unused = [f"{o.name}={self.options[o.name]!r}" for o in (*SHIPPING_OPTIONS, *NODE_ENV_OPTIONS)
                      if self.options.get(o.name, o.default) != o.default]
            if unused:
                raise ConfigError(f"{', '.join(unused)} configure a shipped Python environment, and none ships: "
                                  "pass ship_python_env=True (or penv_archive), or drop them")
            return None
        from orca_core.shipping import plan_environment
        from orca_core.shipping.archive import FORMATS, archive_format

        if given and archive_format(given) is None:
            raise ConfigError(f"penv_archive={given!r} is not an archive Spark can unpack: use a "
                              f"{', '.join(FORMATS)} file, e.g. made with venv-pack or conda-pack")
        if given and "://" in given:
            return ShippedEnv(archive=given, local=None)
        packing = {"penv_archive": os.path.abspath(os.path.expanduser(given)) if given else None, "conda_name": conda,
                   "keep_spark_jars": bool(o.get("keep_spark_jars")), "compress": True,
                   "layered": bool(o.get("node_env_cache"))}
        planned = plan_environment(**packing)
        archive = env_uri(planned.key, planned.format) if env_uri else planned.path
        return ShippedEnv(archive=archive, local=planned.path, key=planned.key, python=planned.python,
                          packing=packing, layers=planned.layers)

    def caches_envs_on_nodes(self, env: ShippedEnv) -> bool:
        """Whether executors run `env` from their host's environment cache: in modes that offer
        `node_env_cache`, for an archive on this machine."""
        return bool(self.options.get("node_env_cache")) and env.key is not None and env.local is not None

    def nodes_share_files(self) -> bool:
        """Whether the executors read this machine's files at the same paths (a cluster on this host)."""
        return False

    def node_env(self, env: ShippedEnv) -> tuple[ShippedEnv, dict[str, str]]:
        """`env` run by the launcher of orca_core.shipping.nodecache, and the conf that ships it:
        the launcher as `spark.files` (unless the nodes read this machine's files) and the cache's
        settings as executor environment. Nodes elsewhere fetch the archive from the driver on a
        miss (`serve_env` adds where)."""
        o, shared = self.options, self.nodes_share_files()
        launcher, _ = launcher_file(shared)
        folder = o["node_env_cache"]
        if folder is True and shared:
            from orca_core.shipping.nodecache import default_root

            folder = default_root()
        conf = {
            "spark.executorEnv.ORCA_ENV_KEY": env.key,
            "spark.executorEnv.ORCA_ENV_ARCHIVE": env.local,
            "spark.executorEnv.ORCA_ENV_PYTHON": env.python,
            "spark.executorEnv.ORCA_NODE_ENVS_MAX": str(parse_memory(o["node_env_cache_size"], "node_env_cache_size")),
        }
        if isinstance(folder, str):
            conf["spark.executorEnv.ORCA_NODE_ENVS"] = os.path.expanduser(folder) if shared else folder
        if not shared:
            conf["spark.files"] = str(launcher)
        return replace(env, launcher=str(launcher) if shared else f"./{launcher.name}"), conf

    def ship(self, plan: LaunchPlan) -> str | None:
        """Pack the planned environment if Orca packs it (once per content key, cached); its local archive."""
        env = plan.python_env
        if env is None or env.key is None:
            return env.local if env else None
        if env.launcher and self.nodes_share_files():  # the workers' cache is on this machine: check it first
            from orca_core.shipping import nodecache

            try:
                nodecache.private_root(plan.spark_conf.get("spark.executorEnv.ORCA_NODE_ENVS") or nodecache.default_root())
            except nodecache.NodeCacheError as e:
                raise CacheError(str(e)) from None
        from orca_core.shipping import pack_environment

        packed = pack_environment(**env.packing)
        if packed.key != env.key:
            raise LaunchError(
                f"the Python environment changed between planning ({env.key}) and packing ({packed.key}): "
                "call init_orca_context() again"
            )
        if packed.path != env.local or packed.python != env.python or packed.layers != env.layers:
            raise LaunchError(f"the packed environment {packed.path} (running {packed.python}) is not the "
                              f"planned {env.local} (running {env.python})")
        if env.launcher:
            write_launcher(self.nodes_share_files())
        return packed.path

    def serve_env(self, plan: LaunchPlan) -> LaunchPlan:
        """`plan` with where executors elsewhere fetch the environment on a miss of their host's
        cache: the driver serves it (orca_core.shipping.serve) until `stop`."""
        env = plan.python_env
        if env is None or not env.launcher or self.nodes_share_files() or plan.master is None:
            return plan
        from orca_core.engines.ray_node import routable_ip
        from orca_core.shipping.serve import ArchiveServer

        host = plan.spark_conf.get("spark.driver.host") or routable_ip(plan.master.split("://", 1)[-1].split(",")[0])
        self.env_server = ArchiveServer(host, {os.path.basename(path): path for path in (env.local, *env.layers)})
        conf = {**plan.spark_conf, "spark.executorEnv.ORCA_ENV_URL": self.env_server.url,
                "spark.executorEnv.ORCA_ENV_TOKEN": self.env_server.token}
        return replace(plan, spark_conf=conf)

    def stop(self) -> None:
        server, self.env_server = self.env_server, None
        if server is not None:
            server.close()


class SparkClusterBackend(ShipsPythonEnv):
    """A Spark cluster mode: `num_nodes` executors of `cores` cores and `memory` each.

    Class attributes say what differs between modes:
    `deploy_mode` ("client", or "cluster" for a driver spark-submit starts on the cluster);
    `containers` (executors run in containers sized by Spark, so Ray's memory is added to them);
    `archives_conf` (the Spark setting that ships archives); `node_python` (the executors'
    Python when no environment ships: None for this interpreter's path, else a command such as
    "python3" found on the nodes); `ships_by_default` (ship this environment unless told
    otherwise, for nodes that cannot have it); `distributes_secret` (the cluster manager hands
    Spark's own per-application secret to the executors, so the mode offers `spark_encryption`) and
    `authenticates_by_default` (then `spark.authenticate` is planned unless the user's conf says
    otherwise). `driver_route(master)` names the host on the way to the executors, and
    `remote_executors(master)` says whether they run on other hosts.
    """

    containers = False
    archives_conf = "spark.archives"
    distributes_secret = False
    authenticates_by_default = False
    submission: spark_submit.Submission | None = None  # the spark-submit `submit` runs

    # planning: pure

    def spark_plan(self, master: str, conf: dict[str, str] | None = None, env: dict[str, str] | None = None,
                   archives: tuple[str, ...] = (), cluster: dict | None = None, env_uri=None) -> LaunchPlan:
        """The LaunchPlan of this request on `master`, with the mode's own `conf`, `env`, `archives`
        and `cluster` data. `env_uri(key, format)` says where the cluster reads a packed environment
        from (default: its local path, for a cluster that fetches from the driver).

        The request's `conf` wins over everything; a `spark.master` in it replaces `master`.
        """
        r = self.request
        python_env, python_conf, unpacked = self.shipping_conf(env_uri)
        shipped = self.py_files()
        conf = {**self.security_conf(), **self.executor_conf(), **python_conf, **(conf or {}),
                **ray_gpu_conf(r, EXECUTOR_GPU if self.containers else None)}
        env = {"PYSPARK_PYTHON": conf["spark.pyspark.python"], **(env or {})}
        archives = unpacked + tuple(archives)
        if archives:
            conf[self.archives_conf] = ",".join(archives)
        if shipped:
            conf["spark.submit.pyFiles"] = ",".join(shipped)
        if r.init_ray_on_spark:
            conf.setdefault("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "1")
        if self.deploy_mode == "client" and "spark.driver.host" not in conf and self.remote_executors(master):
            conf.update(self.driver_conf(master))
        conf.update(r.conf)
        master = conf.pop("spark.master", None) or master
        self.check_driver_host(master, conf)
        return LaunchPlan(
            cluster_mode=r.cluster_mode, master=master, deploy_mode=self.deploy_mode, spark_conf=conf, env=env,
            archives=archives, py_files=shipped, ray=self.ray_plan(), python_env=python_env, cluster=cluster or {},
        )

    def security_conf(self) -> dict[str, str]:
        """Spark's authentication (and `spark_encryption`'s conf) where the cluster manager distributes
        Spark's own secret: no secret in the plan. None with an external shuffle service (in the user's
        conf, else in Spark's spark-defaults.conf), which must be configured with the same setting on
        the nodes, unknown to Orca."""
        if not self.distributes_secret:
            return {}
        encrypt = bool(self.options.get("spark_encryption"))
        if self._shuffle_service():
            if encrypt:
                raise ConfigError(
                    "spark_encryption turns on spark.authenticate, which must match the external shuffle service "
                    "that spark.shuffle.service.enabled=true uses: set spark.authenticate and "
                    "spark.network.crypto.enabled in conf as that service is configured, instead of spark_encryption"
                )
            return {}
        return spark_security.auth_conf(encrypt) if encrypt or self.authenticates_by_default else {}

    def _shuffle_service(self) -> bool:
        """Whether executors use an external shuffle service: the user's conf says, else spark-defaults.conf."""
        key = "spark.shuffle.service.enabled"
        value = self.request.conf.get(key)
        if value is None:
            try:
                value = spark_submit.spark_defaults(self.options.get("spark_home")).get(key)
            except ConfigError:  # no Spark here: planning says so elsewhere
                pass
        return (value or "false").strip().lower() == "true"

    def executor_conf(self) -> dict[str, str]:
        """Executors and driver sized as asked; in containers, room for Ray beside each executor.

        With dynamic allocation, `num_nodes` executors are where Spark starts (`initialExecutors`,
        unless conf sets it, at most `maxExecutors`): `spark.executor.instances` would raise any
        start the conf asks for to `num_nodes`."""
        r, o = self.request, self.options
        conf = {
            "spark.app.name": r.app_name,
            "spark.submit.deployMode": self.deploy_mode,
            "spark.executor.cores": str(r.resources.cores),
            "spark.executor.memory": r.resources.jvm_memory,
        }
        if not dynamic_allocation(r.conf):
            conf["spark.executor.instances"] = str(r.resources.num_nodes)
        elif INITIAL_EXECUTORS not in r.conf:
            most = max_executors(r.conf)
            conf[INITIAL_EXECUTORS] = str(r.resources.num_nodes if most is None else min(r.resources.num_nodes, most))
        if o.get("driver_cores") is not None:
            conf["spark.driver.cores"] = str(o["driver_cores"])
        if o.get("driver_memory") is not None:
            conf["spark.driver.memory"] = jvm_size(parse_memory(o["driver_memory"], "driver_memory"))
        if self.containers and (r.init_ray_on_spark or o.get("extra_executor_memory_for_ray") is not None):
            conf["spark.executor.memoryOverhead"] = jvm_size(self.overhead())
        return conf

    def driver_route(self, master: str) -> str | None:
        """The host on the route from this driver to the executors: the master's host."""
        from urllib.parse import urlsplit

        url = master.split("://", 1)[-1]
        return urlsplit(url if "://" in url else f"//{url}").hostname

    def remote_executors(self, master: str) -> bool:
        """Whether the executors run on other hosts, which cannot reach a loopback driver."""
        return True

    def driver_conf(self, master: str) -> dict[str, str]:
        """spark.driver.host: the `driver_host` option (listening on every interface), else this host's
        address on the route to the cluster."""
        given = self.options.get("driver_host")
        if given:
            return {"spark.driver.host": given, "spark.driver.bindAddress": "0.0.0.0"}
        from orca_core.ports import outward_address

        return {"spark.driver.host": outward_address(self.driver_route(master))}

    def check_driver_host(self, master: str, conf: dict[str, str]) -> None:
        """Executors on other hosts cannot reach a driver on loopback: refuse such a plan."""
        from orca_core.ports import is_loopback

        host = conf.get("spark.driver.host")
        if self.deploy_mode == "client" and self.remote_executors(master) and host and is_loopback(host):
            raise ConfigError(
                f"spark.driver.host={host} is a loopback address, which executors on other hosts cannot reach: "
                "pass driver_host='<an address of this host they reach>' (or spark.driver.host in conf)"
            )

    def ray_memory(self) -> int:
        """Container memory reserved for Ray on each executor: the option, else 30% of `memory`."""
        extra = self.options.get("extra_executor_memory_for_ray")
        if extra is not None:
            return parse_memory(extra, "extra_executor_memory_for_ray")
        return int(self.request.resources.memory * RAY_MEMORY_FACTOR)

    def overhead(self) -> int:
        """Spark's default executor overhead plus the memory Ray needs."""
        memory = self.request.resources.memory
        return max(MIN_OVERHEAD, int(memory * OVERHEAD_FACTOR)) + self.ray_memory()

    def ray_plan(self) -> RayPlan | None:
        """One Ray node per executor unless the options say otherwise. In containers a node's heap
        and object store share the memory reserved for Ray (the object store takes what the heap
        leaves, by default); elsewhere they must fit in the executor's memory."""
        r = self.request
        if self.containers:
            room, name = self.ray_memory(), "the container memory reserved for Ray (extra_executor_memory_for_ray)"
        else:
            room, name = r.resources.memory, "the executor memory (`memory`)"
        return ray_on_spark_plan(r, executors=r.resources.num_nodes, executor_cores=r.resources.cores, room=room,
                                 room_name=name, fill_store=self.containers)

    def py_files(self) -> tuple[str, ...]:
        """What ships for `extra_python_lib`: files as they are, directories as their cached zips."""
        return tuple(pylib.shipped_path(p) for p in self.request.py_files)

    def submit_plan(self, plan: LaunchPlan) -> LaunchPlan:
        """`plan` for the cluster deploy mode: spark-submit this program (`main_program()`) instead."""
        r = self.request
        main, args = self.main_program()
        home = spark_submit.spark_home(self.options.get("spark_home"))
        conf = {k: v for k, v in plan.spark_conf.items() if k != "spark.submit.pyFiles"}
        argv = spark_submit.submit_argv(home, plan.master, "cluster", r.app_name, plan.py_files, main, args)
        return replace(plan, spark=None, spark_conf=conf, submit_argv=argv, ray=None)

    def main_program(self) -> tuple[str, list[str]]:
        return spark_submit.program(self.request.cluster_mode)

    def attach_plan(self) -> LaunchPlan:
        """In the driver spark-submit launched on the cluster: use its SparkContext."""
        return LaunchPlan(cluster_mode=self.request.cluster_mode, master=None, spark="attach",
                          deploy_mode=self.deploy_mode, ray=self.ray_plan())

    # starting

    def submit(self, plan: LaunchPlan, on_line=None) -> int:
        """Run the plan's spark-submit with this machine's Java; its exit status."""
        from orca_core import java

        self.submission = spark_submit.Submission(plan.submit_argv, {**os.environ, **plan.env, **java.for_spark()},
                                                  plan.spark_conf)
        return self.submission.run(on_line)

    def stop(self) -> None:
        super().stop()
        submission, self.submission = self.submission, None
        if submission is not None:
            submission.stop()


def launcher_file(shared: bool) -> tuple[Path, bytes]:
    """Where the executors' launcher (orca_core.shipping.nodecache as a script) lies in the cache,
    and its content: run by this interpreter on a cluster on this host (with ISA-L, if installed,
    to decompress), else by the nodes' `python3`."""
    from orca_core.cache import cache_dir
    from orca_core.shipping import nodecache

    interpreter = sys.executable if shared else "/usr/bin/env python3"
    source = Path(nodecache.__file__).read_bytes().split(b"\n", 1)[1]  # without its own #! line
    body = f"#!{interpreter}\n".encode() + source
    return cache_dir("bin") / f"orca-python-{hashlib.sha256(body).hexdigest()[:16]}", body


def write_launcher(shared: bool) -> Path:
    """The launcher written into the cache (once per content), executable by the user only."""
    from orca_core.cache import publish

    path, body = launcher_file(shared)

    def write(tmp: Path) -> None:
        tmp.write_bytes(body)
        tmp.chmod(0o700)

    return publish(path, write, what="writing the executors' environment launcher")
