"""Backends of the "yarn-client" and "yarn-cluster" modes.

`plan()` reads the Hadoop conf dir and names everything (HDFS paths by content key) without
touching the network; `start(plan)` checks the request against the ResourceManager, packs and
uploads what is missing, and in yarn-cluster mode submits this program and exits with its status.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass

from orca_core import pylib
from orca_core.backend import ClusterBackend, ray_on_spark_plan
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.resources import jvm_size, parse_memory
from orca_yarn import environment, hadoop, kerberos, sparkjars

log = logging.getLogger("orca")
# Every YARN container has CONTAINER_ID; only an ApplicationMaster gets APP_SUBMIT_TIME_ENV.
AM_ENV = ("CONTAINER_ID", "APP_SUBMIT_TIME_ENV")
MIN_OVERHEAD = 384 << 20


def in_application_master() -> bool:
    """True inside a YARN ApplicationMaster container (where yarn-cluster runs the driver)."""
    return all(os.environ.get(name) for name in AM_ENV)


@dataclass
class Staging:
    """What `start` must put on HDFS (local source, remote path) and whom to ask."""

    hadoop: hadoop.HadoopConf
    user: str
    fs: str
    rm_urls: list[str]
    nn_urls: list[str]
    spark_home: str
    env_remote: str | None = None
    env_key: str = ""
    env_format: str = ""
    jars_remote: str | None = None
    keytab: str | None = None
    root: str = ""


class YarnBackend(ClusterBackend):
    """Spark on YARN with the Python environment and Spark's jars cached on HDFS by content."""

    deploy_mode = "client"

    def __init__(self, request):
        super().__init__(request)
        self.staging: Staging | None = None
        self.app_id: str | None = None
        self.rm = None

    # planning (pure)

    def _ray(self) -> RayPlan | None:
        r = self.request
        return ray_on_spark_plan(r, executors=r.resources.num_nodes, executor_cores=r.resources.cores)

    def _staging(self) -> Staging:
        o = self.options
        conf_dir = hadoop.conf_dir(o["hadoop_conf"])
        hconf = hadoop.HadoopConf.load(conf_dir)
        rm_urls = [o["resourcemanager_url"]] if o["resourcemanager_url"] else hconf.resourcemanager_urls()
        nn_urls = [u for u in (o["webhdfs_url"] or "").split(";") if u] or hconf.namenode_urls()
        return Staging(
            hadoop=hconf, user=hadoop.user_name(o["hadoop_user_name"]), fs=hconf.default_fs(), rm_urls=rm_urls,
            nn_urls=nn_urls, spark_home=sparkjars.spark_home(o["spark_home"]),
        )

    def _conf(self, st: Staging) -> dict[str, str]:
        r, o = self.request, self.options
        base = st.root = (o["hdfs_dir"] or f"/user/{st.user}/.orca").rstrip("/")
        penv = o["penv_archive"]
        if penv and environment.is_remote(penv):
            env_uri = penv.split("#", 1)[0]
        else:
            if penv and not os.path.isfile(os.path.expanduser(penv)):
                raise ConfigError(f"penv_archive={penv!r} is not a file: pass a packed environment (.tar.gz or .zip)")
            st.env_format = environment.archive_format(penv)
            st.env_key = environment.key(os.path.abspath(os.path.expanduser(penv)) if penv else None, o["conda_name"])
            st.env_remote = f"{base}/envs/{st.env_key}.{st.env_format}"
            env_uri = st.fs + st.env_remote
        archives = [f"{env_uri}#{environment.NAME}", *_split(o["additional_archive"])]
        conf = {
            "spark.app.name": r.app_name,
            "spark.submit.deployMode": self.deploy_mode,
            "spark.executor.instances": str(r.resources.num_nodes),
            "spark.executor.cores": str(r.resources.cores),
            "spark.executor.memory": r.resources.jvm_memory,
            "spark.driver.cores": str(o["driver_cores"]),
            "spark.driver.memory": jvm_size(parse_memory(o["driver_memory"], "driver_memory")),
            "spark.yarn.dist.archives": ",".join(archives),
            "spark.pyspark.python": environment.PYTHON,
        }
        if o["queue"]:
            conf["spark.yarn.queue"] = o["queue"]
        if o["extra_executor_memory_for_ray"] is not None:
            extra = parse_memory(o["extra_executor_memory_for_ray"], "extra_executor_memory_for_ray")
            conf["spark.executor.memoryOverhead"] = jvm_size(extra)
        if o["jars"]:
            conf["spark.jars"] = ",".join(_split(o["jars"]))
        if st.keytab:
            conf["spark.kerberos.principal"] = o["principal"]
            conf["spark.kerberos.keytab"] = st.keytab
        user_archive = o["spark_yarn_archive"] or r.conf.get("spark.yarn.archive")
        if user_archive:
            conf["spark.yarn.archive"] = user_archive
        elif "spark.yarn.jars" not in r.conf:
            st.jars_remote = f"{base}/spark/{sparkjars.archive_name(st.spark_home)}"
            conf["spark.yarn.archive"] = st.fs + st.jars_remote
        return conf

    def _env(self, st: Staging) -> dict[str, str]:
        env = {"HADOOP_CONF_DIR": st.hadoop.path, "HADOOP_USER_NAME": st.user}
        if self.options["spark_home"]:
            env["SPARK_HOME"] = st.spark_home
        return env

    def _prepare(self) -> tuple[Staging, dict[str, str], tuple[str, ...]]:
        r, o = self.request, self.options
        if r.runtime == "ray":
            raise ConfigError(
                'runtime="ray" is not available on YARN, where Ray runs inside Spark executors: use '
                "init_orca_context(cluster_mode=\"yarn-client\", init_ray_on_spark=True)"
            )
        keytab = kerberos.check(o["principal"], o["keytab"])
        st = self._staging()
        st.keytab = keytab
        conf = self._conf(st)
        shipped = tuple(pylib.shipped_path(p) for p in r.py_files)
        return st, conf, shipped

    def plan(self) -> LaunchPlan:
        st, conf, shipped = self._prepare()
        conf["spark.pyspark.driver.python"] = sys.executable
        if shipped:
            conf["spark.submit.pyFiles"] = ",".join(shipped)
        conf.update(self.request.conf)
        self.staging = st
        env = {**self._env(st), "PYSPARK_PYTHON": environment.PYTHON}
        return LaunchPlan(
            cluster_mode=self.request.cluster_mode, master="yarn", deploy_mode="client", spark_conf=conf, env=env,
            archives=tuple(conf["spark.yarn.dist.archives"].split(",")), py_files=shipped, ray=self._ray(),
        )

    # starting

    def start(self, plan: LaunchPlan) -> None:
        """Check the request against YARN's limits, then pack and upload what HDFS does not have yet."""
        if self.staging is None:
            self.plan()
        st = self.staging
        o = self.options
        if st.keytab:
            kerberos.login(o["principal"], st.keytab)
        self._check_limits(plan)
        if st.env_remote is None and st.jars_remote is None:
            return
        from orca_yarn.staging import HdfsStage

        stage = HdfsStage(st.nn_urls, st.user, root=st.root, timeout=o["timeout"], kerberos=bool(st.keytab))
        if st.env_remote:
            penv = o["penv_archive"]
            local = environment.pack(
                os.path.abspath(os.path.expanduser(penv)) if penv else None, o["conda_name"], st.env_key,
                st.env_format,
            )
            stage.upload(local, st.env_remote, "the Python environment")
        if st.jars_remote:
            stage.upload(sparkjars.build(st.spark_home), st.jars_remote, "Spark's jars")

    def resource_manager(self):
        if self.rm is None:
            from orca_yarn.resourcemanager import ResourceManager

            auth = None
            if self.staging.keytab:
                try:
                    from requests_kerberos import HTTPKerberosAuth
                except ImportError as error:
                    raise ConfigError(
                        "principal/keytab need Kerberos for the ResourceManager: pip install 'orca-yarn[kerberos]'"
                    ) from error
                auth = HTTPKerberosAuth()
            self.rm = ResourceManager(self.staging.rm_urls, self.staging.user, timeout=self.options["timeout"],
                                      auth=auth)
        return self.rm

    def _check_limits(self, plan: LaunchPlan) -> None:
        from orca_yarn.resourcemanager import Container

        conf = plan.spark_conf
        executor_mb = _mb(conf["spark.executor.memory"])
        overhead = conf.get("spark.executor.memoryOverhead")
        factor = float(conf.get("spark.executor.memoryOverheadFactor", "0.1"))
        executor_mb += _mb(overhead) if overhead else max(MIN_OVERHEAD >> 20, int(executor_mb * factor))
        if conf.get("spark.executor.pyspark.memory"):
            executor_mb += _mb(conf["spark.executor.pyspark.memory"])
        containers = [Container("executor", executor_mb, int(conf.get("spark.executor.cores", "1")))]
        if plan.deploy_mode == "cluster":
            am_mb, am_cores = _mb(conf.get("spark.driver.memory", "1g")), conf.get("spark.driver.cores", "1")
            am_overhead = conf.get("spark.driver.memoryOverhead")
            role = "driver (ApplicationMaster)"
        else:
            am_mb, am_cores = _mb(conf.get("spark.yarn.am.memory", "512m")), conf.get("spark.yarn.am.cores", "1")
            am_overhead = conf.get("spark.yarn.am.memoryOverhead")
            role = "ApplicationMaster"
        am_mb += _mb(am_overhead) if am_overhead else max(MIN_OVERHEAD >> 20, int(am_mb * 0.1))
        containers.append(Container(role, am_mb, int(am_cores)))
        self.resource_manager().check(containers, conf.get("spark.yarn.queue"), self.staging.hadoop.max_allocation())

    # the running application

    def attach_app(self, app_id: str) -> None:
        """Remember the application of this context and print where to follow it."""
        self.app_id = app_id
        try:
            url = self.resource_manager().app(app_id).get("trackingUrl")
        except Exception as error:  # the link is a courtesy; the context is up
            log.warning("Orca: cannot ask the ResourceManager for %s: %s", app_id, error)
            url = None
        if not url and self.staging.rm_urls:
            url = f"{self.staging.rm_urls[0]}/proxy/{app_id}/"
        print(f"orca: YARN application {app_id} tracking URL: {url}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Kill the YARN application if it outlived its driver; idempotent."""
        app_id, self.app_id = self.app_id, None
        if app_id is None or self.staging is None:
            return
        from orca_yarn.resourcemanager import FINAL_STATES

        try:
            rm = self.resource_manager()
            if rm.app(app_id).get("state", "FINISHED") not in FINAL_STATES:
                log.warning("Orca: YARN application %s still running after its driver stopped: killing it", app_id)
                rm.kill(app_id)
        except Exception as error:
            log.warning("Orca: cannot make sure YARN application %s ended: %s", app_id, error)


class YarnClusterBackend(YarnBackend):
    """The driver runs in the ApplicationMaster: submit this program there, or attach when already there."""

    deploy_mode = "cluster"

    def __init__(self, request):
        super().__init__(request)
        self.submission = None

    def plan(self) -> LaunchPlan:
        if in_application_master():
            if "PYSPARK_GATEWAY_PORT" not in os.environ:
                raise ConfigError(
                    "this process runs in a YARN ApplicationMaster but was not started by Spark: "
                    'cluster_mode="yarn-cluster" attaches only to the driver spark-submit launched'
                )
            return LaunchPlan(cluster_mode="yarn-cluster", master="yarn", spark="attach", deploy_mode="cluster",
                              ray=self._ray())
        from orca_yarn import submit

        st, conf, shipped = self._prepare()
        conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = environment.PYTHON
        conf["spark.yarn.maxAppAttempts"] = "1"
        conf.update(self.request.conf)
        script, args = submit.program()
        spark_submit = os.path.join(st.spark_home, "bin", "spark-submit")
        argv = (*submit.argv(spark_submit, conf, shipped, self.request.app_name), script, *args)
        self.staging = st
        return LaunchPlan(
            cluster_mode="yarn-cluster", master="yarn", spark=None, deploy_mode="cluster", spark_conf=conf,
            env=self._env(st), archives=tuple(conf["spark.yarn.dist.archives"].split(",")), py_files=shipped,
            submit_argv=argv,
        )

    def start(self, plan: LaunchPlan) -> None:
        """Stage, submit through spark-submit, wait, and exit this process with the program's status."""
        if plan.spark == "attach":
            return
        super().start(plan)
        from orca_yarn import submit

        self.submission = submit.Submission(list(plan.submit_argv), {**os.environ, **plan.env})
        status = self.submission.run(self._on_app)
        if self.app_id and plan.spark_conf.get("spark.yarn.submit.waitAppCompletion", "true") != "false":
            try:
                report = self.resource_manager().app(self.app_id)
            except Exception as error:
                log.warning("Orca: cannot read the final status of %s: %s", self.app_id, error)
                report = {}
            status = submit.exit_status(report, status)
            self.app_id = None  # it ended: nothing to kill
        raise SystemExit(status)

    def _on_app(self, app_id: str) -> None:
        self.app_id = app_id
        print(f"orca: submitted YARN application {app_id}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        submission, self.submission = self.submission, None
        if submission is not None:
            submission.stop()
        super().stop()


def _split(value) -> list[str]:
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]


_SIZE = re.compile(r"(\d+)\s*([kmgt]?)b?", re.IGNORECASE)


def _mb(value: str) -> int:
    """MiB of a Spark memory setting ("4g", "512m", "2048": bare numbers are MiB, as Spark reads them)."""
    m = _SIZE.fullmatch(str(value).strip())
    if not m:
        return parse_memory(str(value)) >> 20
    number, unit = int(m[1]), m[2].lower()
    return {"": number, "k": number >> 10, "m": number, "g": number << 10, "t": number << 20}[unit]
