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
from dataclasses import asdict, dataclass, replace

from orca_core import spark_submit
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan
from orca_core.spark_cluster import SparkClusterBackend
from orca_yarn import hadoop, kerberos, sparkjars
from orca_yarn.staging import FILE_MODE, FOLDER_MODE, visibility

log = logging.getLogger("orca")
# Every YARN container has CONTAINER_ID; only an ApplicationMaster gets APP_SUBMIT_TIME_ENV.
AM_ENV = ("CONTAINER_ID", "APP_SUBMIT_TIME_ENV")
APP_ID = re.compile(r"\b(application_\d+_\d+)\b")
TRACKING_URL = re.compile(r"tracking URL: (\S+)")
USER_EXIT = re.compile(r"User application exited with status (\d+)")


def in_application_master() -> bool:
    """True inside a YARN ApplicationMaster container (where yarn-cluster runs the driver)."""
    return all(os.environ.get(name) for name in AM_ENV)


@dataclass(frozen=True)
class Staging:
    """What `start` must put on HDFS and whom to ask: the `cluster` part of a YARN plan."""

    hadoop_conf: str
    user: str
    fs: str
    rm_urls: list[str]
    nn_urls: list[str]
    root: str
    jars_remote: str | None = None
    keytab: str | None = None
    # How the NodeManagers localise the uploads (PRIVATE: once per node and user), kept for later
    # applications naming the same path and modification time. Each environment is uploaded once to a
    # path named by its content key: later inits unpack nothing.
    archive_visibility: str = visibility(FILE_MODE, FOLDER_MODE)


class YarnBackend(SparkClusterBackend):
    """Spark on YARN with the Python environment and Spark's jars cached on HDFS by content.

    YARN hands Spark's own secret to the containers in their credentials, so `spark.authenticate`
    (on by default) and `spark_encryption` need no secret from Orca (docs/yarn.md).
    """

    containers = True
    distributes_secret = authenticates_by_default = True
    archives_conf = "spark.yarn.dist.archives"
    ships_by_default = True  # YARN's nodes have no Python with this program's packages

    def __init__(self, request):
        super().__init__(request)
        self.staging: Staging | None = None
        self.app_id: str | None = None
        self.rm = None

    # planning (pure)

    def plan(self) -> LaunchPlan:
        if self.request.runtime == "ray":
            raise ConfigError(
                'runtime="ray" is not available on YARN, where Ray runs inside Spark executors: use '
                "init_orca_context(cluster_mode=\"yarn-client\", init_ray_on_spark=True)"
            )
        o = self.options
        st = self._staging()
        conf = {"spark.yarn.maxAppAttempts": "1"} if self.deploy_mode == "cluster" else {}
        if o["queue"]:
            conf["spark.yarn.queue"] = o["queue"]
        if o["jars"]:
            conf["spark.jars"] = ",".join(_split(o["jars"]))
        if st.keytab:
            conf["spark.kerberos.principal"] = o["principal"]
            conf["spark.kerberos.keytab"] = st.keytab
        if o["spark_yarn_archive"] or self.request.conf.get("spark.yarn.archive"):
            conf["spark.yarn.archive"] = o["spark_yarn_archive"] or self.request.conf["spark.yarn.archive"]
        elif st.jars_remote:
            conf["spark.yarn.archive"] = st.fs + st.jars_remote
        env = {"HADOOP_CONF_DIR": st.hadoop_conf, "HADOOP_USER_NAME": st.user}
        if o["spark_home"]:
            env["SPARK_HOME"] = spark_submit.spark_home(o["spark_home"])
        plan = self.spark_plan("yarn", conf, env, tuple(_split(o["additional_archive"])), asdict(st),
                               env_uri=lambda key, fmt: f"{st.fs}{st.root}/envs/{key}.{fmt}")
        if self.deploy_mode == "cluster":
            python = plan.python_env.executor_python if plan.python_env else self.executor_python()
            conf = {**plan.spark_conf, "spark.yarn.appMasterEnv.PYSPARK_PYTHON": python, **self.request.conf}
            plan = self.submit_plan(replace(plan, spark_conf=conf))
        return plan

    def _staging(self) -> Staging:
        o = self.options
        hconf = hadoop.HadoopConf.load(hadoop.conf_dir(o["hadoop_conf"]))
        user = hadoop.user_name(o["hadoop_user_name"])
        root = (o["hdfs_dir"] or f"/user/{user}/.orca").rstrip("/")
        jars = None
        if not (o["spark_yarn_archive"] or {"spark.yarn.archive", "spark.yarn.jars"} & set(self.request.conf)):
            jars = f"{root}/spark/{sparkjars.archive_name(spark_submit.spark_home(o['spark_home']))}"
        return Staging(
            hadoop_conf=hconf.path, user=user, fs=hconf.default_fs(),
            rm_urls=[o["resourcemanager_url"]] if o["resourcemanager_url"] else hconf.resourcemanager_urls(),
            nn_urls=[u for u in (o["webhdfs_url"] or "").split(";") if u] or hconf.namenode_urls(), root=root,
            jars_remote=jars, keytab=kerberos.check(o["principal"], o["keytab"]),
        )

    def driver_route(self, master: str) -> str | None:
        """Executors run on the ResourceManager's cluster: the route to it."""
        from urllib.parse import urlsplit

        rm = self.options["resourcemanager_url"] or next(iter(self._staging().rm_urls), None)
        return urlsplit(rm).hostname if rm else None

    # starting

    def start(self, plan: LaunchPlan) -> None:
        """Check the request against YARN's limits, then pack and upload what HDFS does not have yet."""
        st = self.staging = Staging(**plan.cluster)
        o = self.options
        if st.keytab:
            kerberos.login(o["principal"], st.keytab)
        self._check_limits(plan)
        env = plan.python_env
        uploads = []
        if env is not None and env.local is not None:
            uploads.append((self.ship(plan), env.archive[len(st.fs):], "the Python environment"))
        if st.jars_remote:
            uploads.append((sparkjars.build(spark_submit.spark_home(o["spark_home"])), st.jars_remote, "Spark's jars"))
        if not uploads:
            return
        from orca_yarn.staging import HdfsStage

        stage = HdfsStage(st.nn_urls, st.user, root=st.root, timeout=o["timeout"], kerberos=bool(st.keytab))
        for local, remote, what in uploads:
            stage.upload(local, remote, what)

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
        from orca_yarn.resourcemanager import containers

        limits = hadoop.HadoopConf.load(self.staging.hadoop_conf).max_allocation()
        self.resource_manager().check(containers(plan.spark_conf, plan.deploy_mode),
                                      plan.spark_conf.get("spark.yarn.queue"), limits)

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
        super().stop()
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
    tracking_url: str | None = None

    def plan(self) -> LaunchPlan:
        if not in_application_master():
            return super().plan()
        if not spark_submit.launched_by_spark_submit():
            raise ConfigError(
                "this process runs in a YARN ApplicationMaster but was not started by Spark: "
                'cluster_mode="yarn-cluster" attaches only to the driver spark-submit launched'
            )
        return self.attach_plan()

    def start(self, plan: LaunchPlan) -> None:
        """Stage, submit through spark-submit, wait, and exit this process with the program's status."""
        if plan.spark == "attach":
            return
        super().start(plan)
        status = self.submit(plan, self._on_line)
        if self.app_id and plan.spark_conf.get("spark.yarn.submit.waitAppCompletion", "true") != "false":
            try:
                report = self.resource_manager().app(self.app_id)
            except Exception as error:
                log.warning("Orca: cannot read the final status of %s: %s", self.app_id, error)
                report = {}
            status = exit_status(report, status)
            self.app_id = None  # it ended: nothing to kill
        raise SystemExit(status)

    def _on_line(self, line: str) -> None:
        if self.app_id is None and (match := APP_ID.search(line)):
            self.app_id = match[1]
            print(f"orca: submitted YARN application {self.app_id}", file=sys.stderr, flush=True)
        elif self.tracking_url is None and (match := TRACKING_URL.search(line)) and match[1] != "N/A":
            self.tracking_url = match[1]
            print(f"orca: YARN application {self.app_id} tracking URL: {match[1]}", file=sys.stderr, flush=True)


def exit_status(report: dict, submit_status: int) -> int:
    """The program's exit status from the application report, else spark-submit's."""
    if report.get("finalStatus") == "SUCCEEDED":
        return 0
    match = USER_EXIT.search(report.get("diagnostics") or "")
    if match:
        return int(match[1])
    if report.get("finalStatus") in ("FAILED", "KILLED"):
        return submit_status or 1
    return submit_status


def _split(value) -> list[str]:
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]

