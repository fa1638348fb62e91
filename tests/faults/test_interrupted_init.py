"""An init interrupted by Ctrl-C at any step leaves nothing running and no file behind (real Spark and Ray)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from orca_core.ports import wait_for
from orca_core.testing import leftovers

DRIVER = """
    import faulthandler, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even if started in the background
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the watchdog's: where a hanging driver waits
    from orca_core import init_orca_context, stop_orca_context
    args = {"spark": dict(cluster_mode="local", cores=1, memory="1g"),
            "ray": dict(cluster_mode="local", cores=1, memory="1g", init_ray_on_spark=True, include_webui=False),
            "standalone": dict(cluster_mode="standalone", cores=1, memory="1g", num_nodes=1)}[sys.argv[1]]
    try:
        init_orca_context(**args)
        print("STARTED", flush=True)
    except KeyboardInterrupt:
        from orca_core import state
        print("INTERRUPTED" if state.running is None else "INTERRUPTED, STILL RUNNING", flush=True)
    sys.stdin.readline()
    stop_orca_context()
"""


def children_of(marker: str, driver: int) -> list:
    return [p for p in leftovers(marker) if p[0] != driver]


@pytest.mark.parametrize("step,engines", [
    ("pylib", "ray"), ("backend", "ray"), ("ray", "ray"), ("spark", "spark"), ("spark", "ray"), ("connect", "ray"),
    ("backend-started", "standalone"), ("started", "spark"),
])
def test_ctrl_c_at_a_step_of_init_stops_all_it_started(marked_env, short_tmp, step, engines):
    marker, env = marked_env
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER), engines],
                              env={**env, "ORCA_PAUSE_AT": step, "TMPDIR": short_tmp}, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=short_tmp)
    def hung():  # a driver that hangs prints its threads' stacks, then ends the reads below
        driver.send_signal(signal.SIGUSR1)
        try:
            driver.wait(timeout=5)
        except subprocess.TimeoutExpired:
            driver.kill()

    watchdog = threading.Timer(120, hung)
    watchdog.start()
    paused, errors = threading.Event(), []

    def read_stderr():  # all of it, so that the driver never blocks on a full pipe
        for line in driver.stderr:
            errors.append(line)
            if line.strip() == f"orca: paused at {step}":
                paused.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        try:
            wait_for(lambda: paused.is_set() or driver.poll() is not None, 120, f"init to pause at {step}")
        except TimeoutError:
            pass
        if not paused.is_set():
            pytest.fail(f"init never paused at {step}:\n{''.join(errors)[-3000:]}")
        running = " ".join(f"{name} {cmd}" for _, name, cmd in children_of(marker, driver.pid))
        if step in ("spark", "connect", "started"):
            assert "java" in running, "the JVM is not up"
        if step == "backend-started":
            assert "deploy.master.Master" in running and "deploy.worker.Worker" in running, "the daemons are not up"
            assert os.listdir(short_tmp), "the standalone cluster has no folder"
        driver.send_signal(signal.SIGINT)
        said = driver.stdout.readline().strip()
        if said != "INTERRUPTED":
            reader.join(timeout=10)
            pytest.fail(f"the driver said {said!r} after Ctrl-C at {step}; its stderr:\n{''.join(errors)[-6000:]}")
        try:
            wait_for(lambda: not children_of(marker, driver.pid) and not os.listdir(short_tmp), 20,
                     "what init started to exit and its files to be removed")
        except TimeoutError:
            raise AssertionError(f"left after Ctrl-C at {step}: {children_of(marker, driver.pid)}, "
                                 f"files {os.listdir(short_tmp)}") from None
        assert driver.poll() is None, "the driver itself must survive its Ctrl-C"
        driver.stdin.write("\n")
        driver.stdin.flush()
        assert driver.wait(timeout=30) == 0
        assert os.listdir(short_tmp) == [], "the driver left files behind"
    finally:
        watchdog.cancel()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
