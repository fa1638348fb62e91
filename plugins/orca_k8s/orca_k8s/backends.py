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
import subprocess
import sys
import tempfile
from dataclasses import replace

from orca_core.backend import ClusterBackend, ray_on_spark_plan
from orca_core.errors import ConfigError, LaunchError
from orca_core.plan import LaunchPlan, RayPlan
from orca_core.resources import jvm_size, parse_memory
from orca_k8s import pyenv, target
from orca_k8s.owner import APP, ROLE
from orca_k8s.podspec import PodSpec

log = logging.getLogger("orca.k8s")
DRIVER_PORT, BLOCK_MANAGER_PORT, UI_PORT = 7078, 7079, 4040
MIN_OVERHEAD = 384 << 20


class _K8sBackend(ClusterBackend):
    deploy_mode = "client"

    def __init__(self, request):
        super().__init__(request)
        self.app_id = f"orca-{secrets.token_hex(4)}"
        self.workdir = os.path.join(tempfile.gettempdir(), f"orca-k8s-{os.getuid()}", self.app_id)
        self.kube = None
        self.owner = None
        self.renewer = None
        self.ray_auth_token: str | None = None
        self._target: target.Target | None = None
        self._env: pyenv.ShippedEnv | None = None

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

    def _spark_conf(self, spec: PodSpec) -> dict[str, str]:
        r, o = self.request, self.options
        conf = {
            "spark.app.name": r.app_name,
            "spark.submit.deployMode": self.deploy_mode,
            "spark.kubernetes.namespace": self.namespace,
            **spec.spark_conf(),
            "spark.executor.instances": str(r.resources.num_nodes),
            "spark.executor.cores": str(r.resources.cores),
            "spark.executor.memory": r.resources.jvm_memory,
            "spark.kubernetes.executor.podNamePrefix": self.app_id,
            f"spark.kubernetes.executor.label.{APP}": self.app_id,
            f"spark.kubernetes.executor.label.{ROLE}": "executor",
            "spark.kubernetes.executor.podTemplateFile": self._template_path("executor"),
            "spark.kubernetes.executor.disableConfigMap": "true",
        }
        if o.get("driver_cores"):
            conf["spark.driver.cores"] = str(o["driver_cores"])
        if o.get("driver_memory") is not None:
            conf["spark.driver.memory"] = jvm_size(parse_memory(o["driver_memory"], "driver_memory"))
        if o.get("file_upload_path"):
            conf["spark.kubernetes.file.upload.path"] = o["file_upload_path"]
        if r.init_ray_on_spark:
            conf["spark.executor.memoryOverhead"] = jvm_size(self._overhead())
        self._env = pyenv.resolve(o, self.workdir)
        if self._env:
            conf.update(self._env.spark_conf(self.deploy_mode))
        else:  # the image's Python, not a path of this machine that $PYSPARK_PYTHON may name
            conf["spark.pyspark.python"] = "python3"
            if self.deploy_mode == "client":
                conf["spark.pyspark.driver.python"] = sys.executable
        return conf

    def _ray_memory(self) -> int:
        """Executor memory for Ray's object store: extra_executor_memory_for_ray, else 30% of `memory`."""
        extra = self.options.get("extra_executor_memory_for_ray")
        if extra is not None:
            return parse_memory(extra, "extra_executor_memory_for_ray")
        return self.request.resources.memory * 3 // 10

    def _overhead(self) -> int:
        """Spark's default executor overhead plus the memory Ray's object store needs."""
        return max(MIN_OVERHEAD, self.request.resources.memory // 10) + self._ray_memory()

    def _ray_on_spark(self) -> RayPlan | None:
        r = self.request
        if not r.init_ray_on_spark:
            return None
        plan = ray_on_spark_plan(r, executors=r.resources.num_nodes, executor_cores=r.resources.cores)
        return replace(plan, object_store_memory=plan.object_store_memory or self._ray_memory())

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
        self._write_templates()
        if self._env:
            pyenv.materialize(self._env)
        if plan.ray and plan.ray.kind == "on-spark":
            self._check_image_has_ray()

    def _write_templates(self) -> None:
        from orca_k8s.podspec import template, write_template

        write_template(self._template_path("executor"), template(self.app_id, "executor", self.owner.reference()))

    def _check_image_has_ray(self) -> None:
        """Ray on Spark runs `ray` in the executors: check the image (or shipped environment) has it.

        A shipped environment is this one, so it is checked here. An image cannot be inspected without
        pulling it, so a probe pod (owned like the executors) imports ray and pyspark with the image.
        """
        if self._env:
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise ConfigError("init_ray_on_spark=True ships this Python environment, which lacks ray: "
                                  "pip install 'ray[default]'")
            return
        from orca_k8s import pods

        spec = PodSpec.from_options(self.options, self.request.cluster_mode)
        name = f"{self.app_id}-probe"
        container = {"name": "probe", "image": spec.image,
                     "command": ["python3", "-c", "import ray, pyspark; print('ray', ray.__version__)"]}
        if spec.pull_policy:
            container["imagePullPolicy"] = spec.pull_policy
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {APP: self.app_id, ROLE: "probe"},
                             "ownerReferences": [self.owner.reference()]},
                "spec": {"restartPolicy": "Never", "containers": [container],
                         **({"serviceAccountName": spec.service_account} if spec.service_account else {}),
                         **({"imagePullSecrets": [{"name": s} for s in spec.pull_secrets]}
                            if spec.pull_secrets else {})}}
        self.kube.call(self.kube.core.create_namespaced_pod, self.namespace, body)
        pod = pods.wait_phase(self.kube, self.namespace, name, pods.DONE, self.options["wait_timeout"])
        if pod.status.phase != "Succeeded":
            raise ConfigError(
                f"init_ray_on_spark=True runs Ray in the executors, but image {spec.image} cannot import ray and "
                f"pyspark: {pods.tail(self.kube, self.namespace, name).strip()}. Use an image with "
                "ray[default] installed, or ship_python_env=True"
            )
        self.kube.call(self.kube.core.delete_namespaced_pod, name, self.namespace)

    def _start_ray_cluster(self) -> None:
        from orca_k8s import kuberay

        r = self.request
        spec = PodSpec.from_options(self.options, r.cluster_mode)
        if self.options.get("ray_image"):
            spec = replace(spec, image=self.options["ray_image"])
        self.ray_auth_token = secrets.token_hex(32)
        token_secret = f"{self.app_id}-ray-token"
        self.kube.call(self.kube.core.create_namespaced_secret, self.namespace, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": token_secret, "labels": {APP: self.app_id, ROLE: "ray-token"},
                         "ownerReferences": [self.owner.reference()]},
            "stringData": {"token": self.ray_auth_token},
        })
        body = kuberay.manifest(spec, self.app_id, self.namespace, self.owner.reference(), token_secret,
                                r.resources.cores, r.resources.memory, r.resources.num_nodes)
        kuberay.create(self.kube, body)
        kuberay.wait_ready(self.kube, self.namespace, self.app_id, r.resources.num_nodes,
                           self.options["wait_timeout"])

    def stop(self) -> None:
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
            shutil.rmtree(self.workdir, ignore_errors=True)


class K8sClientBackend(_K8sBackend):
    """The driver runs in this process; executors (and Ray on Spark) run in pods."""

    def plan(self) -> LaunchPlan:
        r = self.request
        if r.runtime == "ray":
            return self._ray_attach_plan()
        spec = PodSpec.from_options(self.options, r.cluster_mode)
        conf = self._spark_conf(spec)
        pod = target.driver_pod()
        if pod is not None:
            conf.update({
                "spark.kubernetes.driver.pod.name": pod.name,
                "spark.driver.host": pod.ip,
                "spark.driver.bindAddress": pod.ip,
                "spark.driver.port": str(DRIVER_PORT),
                "spark.driver.blockManager.port": str(BLOCK_MANAGER_PORT),
            })
        else:
            host = self.options.get("driver_host")
            address = host or target.routable_address(self.target.url)
            conf.update({"spark.driver.host": address, "spark.driver.bindAddress": "0.0.0.0" if host else address})
        if r.py_files:
            from orca_core import pylib

            conf["spark.submit.pyFiles"] = ",".join(pylib.shipped_path(p) for p in r.py_files)
        conf.update(r.conf)
        master = conf.pop("spark.master", None) or self.target.master
        py_files = conf.get("spark.submit.pyFiles")
        return LaunchPlan(cluster_mode=r.cluster_mode, master=master, spark_conf=conf,
                          archives=(self._env.archive,) if self._env else (),
                          py_files=tuple(py_files.split(",")) if py_files else (), ray=self._ray_on_spark())

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
        self._driver_service(pod)

    def _driver_service(self, pod: target.DriverPod) -> None:
        """A headless Service naming the driver pod, owned by it: `<app>-driver.<namespace>.svc`."""
        core = self.kube.core
        me = self.kube.call(core.patch_namespaced_pod, pod.name, self.namespace,
                            {"metadata": {"labels": {"orca.dev/driver": self.app_id}}})
        ref = {"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": me.metadata.uid}
        ports = [{"name": n, "port": p, "targetPort": p}
                 for n, p in (("driver-rpc", DRIVER_PORT), ("blockmanager", BLOCK_MANAGER_PORT), ("spark-ui", UI_PORT))]
        self.kube.call(core.create_namespaced_service, self.namespace, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{self.app_id}-driver", "labels": {APP: self.app_id, ROLE: "driver-service"},
                         "ownerReferences": [ref]},
            "spec": {"clusterIP": "None", "selector": {"orca.dev/driver": self.app_id}, "ports": ports},
        })


def spark_submit() -> str:
    """$SPARK_HOME/bin/spark-submit, else the one pyspark ships."""
    home = os.environ.get("SPARK_HOME")
    if not home:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError("k8s-cluster needs spark-submit: pip install pyspark, or set SPARK_HOME")
        home = spec.submodule_search_locations[0]
    return os.path.join(home, "bin", "spark-submit")


class K8sClusterBackend(_K8sBackend):
    """spark-submit --deploy-mode cluster: the driver runs in a pod; this process follows it and exits
    with its exit status. In the driver pod, the program attaches to the SparkContext spark-submit made."""

    deploy_mode = "cluster"

    def plan(self) -> LaunchPlan:
        r = self.request
        if r.runtime == "ray":
            return self._ray_attach_plan()
        if "PYSPARK_GATEWAY_PORT" in os.environ:
            return LaunchPlan(cluster_mode=r.cluster_mode, master=None, spark="attach", deploy_mode="cluster",
                              ray=self._ray_on_spark())
        spec = PodSpec.from_options(self.options, r.cluster_mode)
        conf = self._spark_conf(spec)
        main, args = self._program()
        conf.update({
            "spark.kubernetes.driver.pod.name": f"{self.app_id}-driver",
            f"spark.kubernetes.driver.label.{APP}": self.app_id,
            f"spark.kubernetes.driver.label.{ROLE}": "driver",
            "spark.kubernetes.driver.podTemplateFile": self._template_path("driver"),
            "spark.kubernetes.submission.waitAppCompletion": "false",
        })
        py_files = [os.path.abspath(p) for p in r.py_files]
        uploads = [p for p in (main, *py_files, self._env.archive if self._env else None)
                   if p and "://" not in p]
        if uploads and not self.options.get("file_upload_path"):
            raise ConfigError(
                f"k8s-cluster must ship {', '.join(uploads)} to the driver pod: pass file_upload_path="
                "'s3a://bucket/path' (any Hadoop file system the pods can read), or main_file='/path/in/image.py' "
                "for a program already in the image"
            )
        conf.update(r.conf)
        master = conf.pop("spark.master", None) or self.target.master
        argv = [spark_submit(), "--master", master, "--deploy-mode", "cluster", "--name", r.app_name]
        for key, value in sorted(conf.items()):
            argv += ["--conf", f"{key}={value}"]
        if py_files:
            argv += ["--py-files", ",".join(py_files)]
        argv += [main, *args]
        return LaunchPlan(cluster_mode=r.cluster_mode, master=master, spark=None, deploy_mode="cluster",
                          spark_conf=conf, submit_argv=tuple(argv), py_files=tuple(py_files),
                          archives=(self._env.archive,) if self._env else ())

    def _program(self) -> tuple[str, list[str]]:
        main_file = self.options.get("main_file")
        if main_file:
            return (main_file if "://" in main_file else f"local://{main_file}"), sys.argv[1:]
        program = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else None
        if not program or not os.path.isfile(program):
            raise ConfigError(
                "k8s-cluster runs a program file in the driver pod, and this process has none (interactive or -c): "
                "pass main_file='/path/in/image.py'"
            )
        return os.path.abspath(program), sys.argv[1:]

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
        done = subprocess.run(list(plan.submit_argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
        output = done.stdout.decode(errors="replace")
        if done.returncode != 0:
            raise LaunchError(f"spark-submit exited with status {done.returncode}:\n{output[-4000:]}")
        log.debug("spark-submit: %s", output)
        timeout = self.options["wait_timeout"]
        pods.wait_phase(self.kube, self.namespace, name, ("Running", *pods.DONE), timeout)
        pods.stream_log(self.kube, self.namespace, name, sys.stdout)
        pod = pods.wait_phase(self.kube, self.namespace, name, pods.DONE, timeout)
        code = pods.exit_code(pod)
        log.info("Orca: driver pod %s finished: %s, exit status %d", name, pod.status.phase, code)
        return code
