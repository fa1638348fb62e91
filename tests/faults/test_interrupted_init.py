"""An init interrupted by Ctrl-C at any step leaves nothing running (real Spark and Ray)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from orca_core.ports import wait_for
from orca_core.testing import leftovers

DRIVER = """
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even if started in the background
    from orca_core import init_orca_context, stop_orca_context
    try:
        init_orca_context(cluster_mode="local", cores=1, memory="1g", init_ray_on_spark=sys.argv[1] == "ray",
                          include_webui=False) if sys.argv[1] == "ray" else init_orca_context(
                          cluster_mode="local", cores=1, memory="1g")
        print("STARTED", flush=True)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
    sys.stdin.readline()
    stop_orca_context()
"""


def children_of(marker: str, driver: int) -> list:
    return [p for p in leftovers(marker) if p[0] != driver]


@pytest.mark.parametrize("step,engines", [
    ("pylib", "ray"), ("backend", "ray"), ("ray", "ray"), ("spark", "spark"), ("spark", "ray"), ("connect", "ray"),
])
def test_ctrl_c_at_a_step_of_init_stops_all_it_started(marked_env, tmp_path, step, engines):
    marker, env = marked_env
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER), engines],
                              env={**env, "ORCA_PAUSE_AT": step}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    watchdog = threading.Timer(120, driver.kill)  # a driver that hangs ends the reads below
    watchdog.start()
    try:
        for line in driver.stderr:
            if line.strip() == f"orca: paused at {step}":
                break
        else:
            pytest.fail(f"init never paused at {step}")
        if step in ("spark", "connect"):
            assert any("java" in name for _, name, _ in children_of(marker, driver.pid)), "the JVM is not up"
        driver.send_signal(signal.SIGINT)
        assert driver.stdout.readline().strip() == "INTERRUPTED"
        try:
            wait_for(lambda: not children_of(marker, driver.pid), 20, "what init started to exit")
        except TimeoutError:
            raise AssertionError(f"left running after Ctrl-C at {step}: {children_of(marker, driver.pid)}") from None
        assert driver.poll() is None, "the driver itself must survive its Ctrl-C"
        driver.stdin.write("\n")
        driver.stdin.flush()
        assert driver.wait(timeout=30) == 0
    finally:
        watchdog.cancel()
        if driver.poll() is None:
            driver.kill()
            driver.wait()

