"""An init that fails (a hook raises, a plugin's start fails, Spark fails beside Ray) raises promptly and leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from orca_core.ports import wait_for
from orca_core.testing import leftovers

DRIVER = """
    import json, sys
    from orca_core import OrcaContext, init_orca_context, stop_orca_context
    args = json.loads(sys.argv[1])
    OrcaContext.barrier_mode = args.pop("barrier_mode", True)
    try:
        init_orca_context(**args)
        print("STARTED", flush=True)
    except Exception as error:
        print("RAISED", type(error).__name__, str(error).replace("\\n", " "), flush=True)
    from orca_core import state
    print("RUNNING" if state.running else "NOTHING RUNNING", flush=True)
    stop_orca_context()
"""

RAY = dict(cluster_mode="local", cores=1, memory="1g", init_ray_on_spark=True, include_webui=False)

FAILING_HOOK = """
    from orca_core import hookimpl

    @hookimpl
    def orca_context_started(context):
        raise RuntimeError("the hook broke")
"""

FAILING_START = """
    import os, sys
    from orca_core import hookimpl
    from orca_core.records import ClusterMode
    from orca_core.supervised import Supervised
    from orca_local.backends import LocalBackend
    from orca_core.backend import RAY_ON_SPARK_OPTIONS

    class FailingBackend(LocalBackend):
        daemon = None

        def start(self, plan):
            self.daemon = Supervised("a test daemon", [sys.executable, "-c", "print('up', flush=True); input()"],
                                     "up", os.path.join(os.environ["TMPDIR"], "daemon.log"))
            self.daemon.start()
            raise RuntimeError("the backend broke after starting its daemon")

        def stop(self):
            if self.daemon is not None:
                self.daemon.stop()

    @hookimpl
    def orca_cluster_modes():
        yield ClusterMode("failing", FailingBackend, "starts a daemon, then fails", options=RAY_ON_SPARK_OPTIONS)
"""


def run_driver(marked_env, tmp: str, args: dict, pythonpath: str = "") -> list[str]:
    """Run the driver with these init arguments; return its output lines once it has exited."""
    marker, env = marked_env
    env = {**env, "TMPDIR": tmp, "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(DRIVER), json.dumps(args)], env=env, cwd=tmp,
                              capture_output=True, text=True, timeout=240)
    finally:
        wait_for(lambda: not leftovers(marker), 20, "every process the driver started to exit")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def assert_nothing_left(lines: list[str], tmp: str, *also: str) -> None:
    assert lines[-1] == "NOTHING RUNNING", lines
    assert sorted(os.listdir(tmp)) == sorted(also), "the failed init left files behind"


def test_a_failing_orca_context_started_hook_stops_the_context(marked_env, short_tmp, fake_distribution):
    root = fake_distribution("orca-failing-hook", {"failing_hook": "failing_hook"}, {"failing_hook.py": FAILING_HOOK})
    lines = run_driver(marked_env, short_tmp, RAY, str(root))
    assert lines[0].startswith("RAISED LaunchError the orca_context_started hook of plugin failing_hook failed"), lines
    assert "RuntimeError: the hook broke" in lines[0]
    assert_nothing_left(lines, short_tmp)


def test_a_backend_failing_after_it_started_a_daemon_stops_it(marked_env, short_tmp, fake_distribution):
    root = fake_distribution("orca-failing", {"failing": "failing_mode"}, {"failing_mode.py": FAILING_START})
    lines = run_driver(marked_env, short_tmp, {**RAY, "cluster_mode": "failing"}, str(root))
    assert lines[0] == "RAISED RuntimeError the backend broke after starting its daemon", lines
    assert_nothing_left(lines, short_tmp, "daemon.log")


@pytest.mark.parametrize("conf,barrier,error", [
    ({"spark.driver.extraJavaOptions": "-Xmx64m"}, True,  # spark-submit refuses it: the driver JVM exits
     "LaunchError the Spark driver JVM failed to start"),
    ({"spark.driver.port": "abc"}, True,  # the JVM runs, the SparkContext fails
     "LaunchError the SparkContext failed to start: org.apache.spark.SparkIllegalArgumentException"),
    ({"spark.master": "local-cluster[1,1,1024]", "spark.executor.extraJavaOptions": "-Xms2g",
      "spark.scheduler.maxRegisteredResourcesWaitingTime": "10s"}, False,  # every executor JVM exits at launch
     "LaunchError no Spark executor (of 1) registered within 10s, so no Ray node can start"),
])
def test_spark_failing_beside_a_starting_ray_raises_and_leaves_nothing(marked_env, short_tmp, conf, barrier, error):
    lines = run_driver(marked_env, short_tmp, {**RAY, "conf": conf, "barrier_mode": barrier})
    assert lines[0].startswith(f"RAISED {error}"), lines
    assert_nothing_left(lines, short_tmp)


NODE_1_REFUSES = """
    import orca_core.engines.ray_node as ray_node

    start = ray_node.start

    def refusing(spec, index, hold=False):
        if index == 1:
            raise RuntimeError("Ray node 1 refuses to start")
        return start(spec, index, hold)

    ray_node.start = refusing
"""


def test_a_node_that_fails_in_barrier_mode_stops_the_nodes_that_started(marked_env, short_tmp, tmp_path):
    """Node 0 starts, node 1 fails: both tasks hear the failure at the driver's gate at once, node 0 stops."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(NODE_1_REFUSES))  # in the executors' Python workers
    conf = {"spark.master": "local-cluster[2,1,1024]", "spark.executorEnv.PYTHONPATH": str(tmp_path)}
    started = time.monotonic()
    lines = run_driver(marked_env, short_tmp, {**RAY, "conf": conf, "barrier_mode": True})
    assert lines[0].startswith("RAISED LaunchError Ray nodes failed to start on the executors:"), lines
    assert "Ray node 1 refuses to start" in lines[0]
    assert time.monotonic() - started < 90  # not the gate's timeout (150 s)
    assert_nothing_left(lines, short_tmp)
