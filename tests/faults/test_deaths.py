"""kill -9 of each process Orca supervises: stderr names it at once, the next call raises, stop cleans up."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest

from orca_core.ports import wait_for
from orca_core.testing import assert_kill_9_leaves_nothing, leftovers

DRIVER = """
    import sys, threading, time
    from orca_core import OrcaContext, init_orca_context, stop_orca_context
    from orca_core.errors import EngineDied

    ray = dict(cluster_mode="local", cores=1, memory="1g", init_ray_on_spark=True, include_webui=False)
    args = {"ray": ray, "standalone": dict(cluster_mode="standalone", cores=1, memory="1g", num_nodes=1),
            "ray-on-spark": dict(ray, conf={"spark.master": "local-cluster[1,1,1024]"})}[sys.argv[1]]
    init_orca_context(**args)
    pending = sys.argv[2]  # where a ray.get of a long task waits while the test kills: main, thread or none
    if pending != "none":
        import ray

        ref = ray.remote(lambda: time.sleep(600)).remote()

        def get():
            try:
                ray.get(ref)
                print("GET RETURNED", file=sys.stderr, flush=True)
            except BaseException as error:
                print("GET ENDED", type(error).__name__, file=sys.stderr, flush=True)

    print("UP", flush=True)
    if pending == "main":
        get()
    elif pending == "thread":
        threading.Thread(target=get).start()
    sys.stdin.readline()
    for call in (OrcaContext.get_spark_context if sys.argv[1] == "standalone" else OrcaContext.get_ray_context,
                 lambda: init_orca_context(**args)):
        try:
            call()
            print("NO ERROR", flush=True)
        except EngineDied as error:
            print("ERROR", str(error).replace("\\n", " "), flush=True)
    stop_orca_context()
    print("STOPPED", flush=True)
"""


class Lines:
    """The lines of a pipe, read by a thread: `until(pattern, timeout)` returns the first match."""

    def __init__(self, pipe):
        self.seen: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self._queue.put(line) for line in pipe] + [self._queue.put(None)],
                         daemon=True).start()

    def until(self, pattern: str, timeout: float) -> re.Match:
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s; got:\n{''.join(self.seen)}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match


def victim(marker: str, which: str) -> psutil.Process:
    """The driver's process to kill: by name (raylet, gcs_server), by the Spark daemon's main class, "head raylet"
    and "node raylet" (of Ray on Spark), "executor", or "head supervisor" (the Ray head's)."""
    for pid, name, cmdline in leftovers(marker):
        if which == "head raylet" and name == "raylet" and " --head " in f"{cmdline} ":
            return psutil.Process(pid)
        if which == "node raylet" and name == "raylet" and "orca-rn-" in cmdline:
            return psutil.Process(pid)
        if which == "head supervisor" and "orca_core.supervisor" in cmdline and " --head " in cmdline:
            return psutil.Process(pid)
        if which == "executor" and name == "java" and "CoarseGrainedExecutorBackend" in cmdline:
            return psutil.Process(pid)
        if name == which or (name == "java" and f"org.apache.spark.deploy.{which}" in cmdline):
            return psutil.Process(pid)
    raise AssertionError(f"no {which} among {[name for _, name, _ in leftovers(marker)]}")


@pytest.mark.parametrize("engines,which,owner,log,pending", [
    ("ray", "raylet", "the Ray head", "raylet.out", "main"),
    ("ray", "gcs_server", "the Ray head", "gcs_server.out", "none"),
    ("ray", "head supervisor", "the Ray head", "ray-head.log", "thread"),
    ("standalone", "worker.Worker", "Spark standalone worker 0", "worker-0.log", "none"),
    ("standalone", "master.Master", "the Spark standalone master", "master.log", "none"),
    ("ray-on-spark", "head raylet", "the Ray head", "raylet.out", "thread"),
    ("ray-on-spark", "node raylet", "a Ray node on a Spark executor", "the node's log", "none"),
    ("ray-on-spark", "executor", "a Ray node on a Spark executor", "the node's log", "none"),
])
def test_kill_9_of_a_supervised_process_is_reported_and_stop_cleans_up(marked_env, short_tmp, engines, which,
                                                                       owner, log, pending):
    """With `pending`, a ray.get of a long task waits (in the main thread or another) when the head dies: it ends
    promptly (Orca disconnects from the dead cluster) instead of waiting out its timeout."""
    marker, env = marked_env
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER), engines, pending],
                              env={**env, "TMPDIR": short_tmp}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=short_tmp)
    out, err = Lines(driver.stdout), Lines(driver.stderr)
    try:
        out.until("^UP$", 240)
        process = victim(marker, which)
        process.send_signal(signal.SIGKILL)
        said = err.until(f"^orca: {owner} died unexpectedly: (.*); last lines of (.+):$", 15)
        what, log_path = said.groups()
        assert f"pid {process.pid}" in what and ("killed by SIGKILL" in what or "exited" in what), what
        assert log_path.endswith(log)
        if pending != "none":  # it ends now: Orca interrupts it as Ctrl-C would (main) or disconnects (thread),
            # unless Ray saw the head's raylet go first
            ended = "KeyboardInterrupt" if pending == "main" else "SystemExit"
            got = next((line for line in err.seen if line.startswith("GET ")), None) or err.until("^GET ", 30).string
            assert got.strip() in {f"GET ENDED {ended}", "GET ENDED LocalRayletDiedError"}
        driver.stdin.write("\n")
        driver.stdin.flush()
        for _ in range(2):  # the next Orca calls: a getter, and init with the same arguments
            error = out.until("ERROR", 30).string
            assert error.startswith("ERROR ") and f"{owner} died unexpectedly" in error and "stop_orca_context()" \
                in error, error
        out.until("^STOPPED$", 60)
        assert driver.wait(timeout=60) == 0
        wait_for(lambda: not leftovers(marker), 15, "every process of the context to exit")
        assert os.listdir(short_tmp) == [], "stop left files behind"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid, _, _ in leftovers(marker):
            psutil.Process(pid).kill()


def test_kill_9_of_a_ray_on_spark_driver_leaves_no_executor_or_ray_node(marked_env, short_tmp):
    command = [sys.executable, "-c", textwrap.dedent(DRIVER), "ray-on-spark", "none"]
    assert_kill_9_leaves_nothing(command, (marked_env[0], {**marked_env[1], "TMPDIR": short_tmp}),
                                 running=("CoarseGrainedExecutorBackend", "raylet", "gcs_server"))
