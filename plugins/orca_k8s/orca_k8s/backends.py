"""Backends of the "k8s-client" and "k8s-cluster" modes.

`plan()` reads kubeconfig only; `start(plan)` runs the pre-flight checks, sweeps applications whose
driver died, creates the owner and starts renewing its lease, then brings up what the plan needs.
`stop()` deletes the owner: Kubernetes' garbage collector removes every pod it owns.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import replace

from orca_core import spark_submit
from orca_core.errors import ConfigError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.spark_cluster import SparkClusterBackend
from orca_k8s import target
from orca_k8s.labels import APP, ROLE
from orca_k8s.podspec import PodSpec

log = logging.getLogger("orca.k8s")
DRIVER_PORT, BLOCK_MANAGER_PORT, UI_PORT = 7078, 7079, 4040


class _K8sBackend(SparkClusterBackend):
    """Spark's own secret reaches the executor pods in their environment (SPARK_AUTHENTICATE_SECRET),
    so Spark authenticates by default with no secret from Orca."""

    containers = True
    distributes_secret = authenticates_by_default = True
    node_python = "python3"  # the image's Python, not a path of this machine

    def __init__(self, request):
        super().__init__(request)
        self.app_id = f"orca-{secrets.token_hex(4)}"
        self.workdir = os.path.join(tempfile.gettempdir(), f"orca-k8s-{os.getuid()}", self.app_id)
        self.kube = None
        self.owner = None
        self.renewer = None
        self.ray_auth_token: str | None = None
        self._target: target.Target | None = None
        self._workdir_made = None

    # -- plan: pure ---------------------------------------------------------------------------------

    @property
    def target(self) -> target.Target:
        if self._target is None:
            self._target = target.resolve(self.options)
        return self._target

    @property
    def namespace(self) -> str:
        return self.target.namespace

    def _template_path(self, role: str) -> str:
        return os.path.join(self.workdir, f"{role}-pod.json")

    def _spark_plan(self, conf: dict[str, str]) -> LaunchPlan:
        """The plan of this request's pods, with the mode's own `conf`."""
        spec = PodSpec.from_options(self.options, self.request.cluster_mode)
        conf = {
            "spark.kubernetes.namespace": self.namespace,
            **spec.spark_conf(),
            "spark.kubernetes.executor.podNamePrefix": self.app_id,
            f"spark.kubernetes.executor.label.{APP}": self.app_id,
            f"spark.kubernetes.executor.label.{ROLE}": "executor",
            "spark.kubernetes.executor.podTemplateFile": self._template_path("executor"),
            "spark.kubernetes.executor.disableConfigMap": "true",
            **conf,
        }
        if self.options.get("file_upload_path"):
            conf["spark.kubernetes.file.upload.path"] = self.options["file_upload_path"]
        return self.spark_plan(self.target.master, conf)

    def _ray_attach_plan(self) -> LaunchPlan:
        from orca_k8s import kuberay

        r = self.request
        PodSpec.from_options(self.options, self.request.cluster_mode)
        ray = RayPlan(kind="attach", num_nodes=r.resources.num_nodes, cpus_per_node=r.resources.cores,
                      address=kuberay.address(self.app_id, self.namespace))
        return LaunchPlan(cluster_mode=r.cluster_mode, master=None, spark=None, ray=ray)

    # -- start / stop -------------------------------------------------------------------------------

    def _permissions(self, plan: LaunchPlan):
        from orca_k8s import preflight

        if plan.ray and plan.ray.kind == "attach":
            return (*preflight.CLIENT_PERMISSIONS, *preflight.RAY_PERMISSIONS)
        return preflight.CLIENT_PERMISSIONS

    def start(self, plan: LaunchPlan) -> None:
        if plan.spark == "attach":
            return  # inside the driver pod spark-submit started: the submitting process owns the application
        from orca_k8s import owner, preflight
        from orca_k8s.kube import Kube

        self.kube = Kube(self.target)
        preflight.check(self.kube, self.namespace, self.options.get("service_account"), self._permissions(plan))
        for ns, app in owner.sweep(self.kube, self.namespace):
            log.warning("Orca: removed application %s in %s, whose driver had stopped renewing its lease", app, ns)
        self.owner = owner.Owner(self.kube, self.namespace, self.app_id, self.options["lease_seconds"])
        self.owner.create()
        self.renewer = owner.Renewer(self.owner)
        self.renewer.start()
        log.info("Orca: application %s in namespace %s (owner ConfigMap %s)", self.app_id, self.namespace,
                 self.app_id)
        if plan.ray and plan.ray.kind == "attach":
            self._start_ray_cluster()
            return
        self._make_workdir()
        self._write_templates()
        self.ship(plan)
        if plan.ray and plan.ray.kind == "on-spark":
            self._check_image_has_ray(plan)

    def _make_workdir(self) -> None:
        """The application's folder of pod templates: new, in a folder of this user's alone."""
        from orca_core.private import private_dir

        private_dir(os.path.dirname(self.workdir), "Orca keeps Kubernetes pod templates there: remove it")
        self._workdir_made = private_dir(self.workdir, "remove it", fresh=True)

    def _write_templates(self) -> None:
        from orca_k8s.podspec import template, write_template

        write_template(self._template_path("executor"), template(self.app_id, "executor", self.owner.reference()))

    def _check_image_has_ray(self, plan: LaunchPlan) -> None:
        """Ray on Spark runs `ray` in the executors: check the image (or shipped environment) has it.

        A shipped environment is this one, so it is checked here. An image cannot be inspected without
        pulling it, so a probe pod (owned like the executors) imports ray and pyspark with the image.
        """
        if plan.python_env:
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise ConfigError("init_ray_on_spark=True ships this Python environment, which lacks ray: "
                                  "pip install 'ray[default]'")
            return
        from orca_k8s import pods

        spec = PodSpec.from_options(self.options, self.request.cluster_mode)
        ok, output = pods.probe(
            self.kube, self.namespace, spec, f"{self.app_id}-probe",
            {"labels": {APP: self.app_id, ROLE: "probe"}, "ownerReferences": [self.owner.reference()]},
            ["python3", "-c", "import ray, pyspark; print('ray', ray.__version__)"], self.options["wait_timeout"],
        )
        if not ok:
            raise ConfigError(
                f"init_ray_on_spark=True runs Ray in the executors, but image {spec.image} cannot import ray and "
                f"pyspark: {output}. Use an image with ray[default] installed, or ship_python_env=True"
            )

    def _start_ray_cluster(self) -> None:
        from orca_k8s import kuberay

        r = self.request
        spec = PodSpec.from_options(self.options, r.cluster_mode)
        if self.options.get("ray_image"):
            spec = replace(spec, image=self.options["ray_image"])
        self.ray_auth_token = kuberay.start(self.kube, spec, self.app_id, self.namespace, self.owner.reference(),
                                            r.resources.cores, r.resources.memory, r.resources.num_nodes,
                                            self.options["wait_timeout"])

    def stop(self) -> None:
        super().stop()
        renewer, self.renewer = self.renewer, None
        if renewer is not None:
            renewer.stop()
        owner, self.owner = self.owner, None
        kube, self.kube = self.kube, None
        try:
            if owner is not None:
                owner.release()
        finally:
            if kube is not None:
                kube.close()
            made, self._workdir_made = self._workdir_made, None
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)


class K8sClientBackend(_K8sBackend):
    """The driver runs in this process; executors (and Ray on Spark) run in pods."""

    def plan(self) -> LaunchPlan:
        if self.request.runtime == "ray":
            return self._ray_attach_plan()
        pod = target.driver_pod()
        if pod is not None:
            conf = {
                "spark.kubernetes.driver.pod.name": pod.name,
                "spark.driver.host": pod.ip,
                "spark.driver.bindAddress": pod.ip,
                "spark.driver.port": str(DRIVER_PORT),
                "spark.driver.blockManager.port": str(BLOCK_MANAGER_PORT),
            }
        else:
            conf = {}  # spark.driver.host: the layer's driver_conf, towards the API server
        return self._spark_plan(conf)

    def driver_route(self, master: str) -> str | None:
        """Executors run in the cluster of the API server: the route to it."""
        from urllib.parse import urlsplit

        return urlsplit(self.target.url).hostname

    def _permissions(self, plan: LaunchPlan):
        from orca_k8s import preflight

        base = super()._permissions(plan)
        return (*base, *preflight.IN_POD_PERMISSIONS) if target.driver_pod() else base

    def _write_templates(self) -> None:
        pod = target.driver_pod()
        if pod is None:
            return super()._write_templates()
        from orca_k8s.podspec import template, write_template

        # In a pod, Spark makes the driver pod own the executors; the lease still sweeps them by label.
        write_template(self._template_path("executor"), template(self.app_id, "executor", None))
        from orca_k8s import pods

        pods.headless_service(self.kube, self.namespace, pod.name, f"{self.app_id}-driver",
                              {APP: self.app_id, ROLE: "driver-service"},
                              {"driver-rpc": DRIVER_PORT, "blockmanager": BLOCK_MANAGER_PORT, "spark-ui": UI_PORT})


class K8sClusterBackend(_K8sBackend):
    """spark-submit --deploy-mode cluster: the driver runs in a pod; this process follows it and exits
    with its exit status. In the driver pod, the program attaches to the SparkContext spark-submit made."""

    deploy_mode = "cluster"

    def plan(self) -> LaunchPlan:
        if self.request.runtime == "ray":
            return self._ray_attach_plan()
        if spark_submit.launched_by_spark_submit():
            return self.attach_plan()
        plan = self._spark_plan({
            "spark.kubernetes.driver.pod.name": f"{self.app_id}-driver",
            f"spark.kubernetes.driver.label.{APP}": self.app_id,
            f"spark.kubernetes.driver.label.{ROLE}": "driver",
            "spark.kubernetes.driver.podTemplateFile": self._template_path("driver"),
            "spark.kubernetes.submission.waitAppCompletion": "false",
        })
        main, _ = self.main_program()
        env = plan.python_env.archive if plan.python_env else None
        uploads = [p for p in (main, *plan.py_files, env) if p and "://" not in p]
        if uploads and "spark.kubernetes.file.upload.path" not in plan.spark_conf:
            raise ConfigError(
                f"k8s-cluster must ship {', '.join(uploads)} to the driver pod: pass file_upload_path="
                "'s3a://bucket/path' (any Hadoop file system the pods can read), or main_file='/path/in/image.py' "
                "for a program already in the image"
            )
        return self.submit_plan(plan)

    def main_program(self) -> tuple[str, list[str]]:
        main_file = self.options.get("main_file")
        if main_file:
            return (main_file if "://" in main_file else f"local://{main_file}"), sys.argv[1:]
        return super().main_program()

    def _write_templates(self) -> None:
        from orca_k8s.podspec import template, write_template

        super()._write_templates()
        write_template(self._template_path("driver"), template(self.app_id, "driver", self.owner.reference()))

    def _permissions(self, plan: LaunchPlan):
        from orca_k8s import preflight

        return preflight.CLUSTER_PERMISSIONS if plan.submit_argv else super()._permissions(plan)

    def start(self, plan: LaunchPlan) -> None:
        super().start(plan)
        if plan.submit_argv:
            raise SystemExit(self._submit_and_follow(plan))

    def _submit_and_follow(self, plan: LaunchPlan) -> int:
        """Run spark-submit, follow the driver pod's log, and return the driver's exit status."""
        from orca_k8s import pods

        name = plan.spark_conf["spark.kubernetes.driver.pod.name"]
        status = self.submit(plan)
        if status != 0:
            raise self.submission.failure(status)
        timeout = self.options["wait_timeout"]
        pods.wait_phase(self.kube, self.namespace, name, ("Running", *pods.DONE), timeout)
        pods.stream_log(self.kube, self.namespace, name, sys.stdout)
        pod = pods.wait_phase(self.kube, self.namespace, name, pods.DONE, timeout)
        code = pods.exit_code(pod)
        log.info("Orca: driver pod %s finished: %s, exit status %d", name, pod.status.phase, code)
        return code
