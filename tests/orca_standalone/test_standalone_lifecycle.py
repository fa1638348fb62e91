"""A standalone cluster Orca starts, with Ray on it, leaves nothing after stop or after kill -9 of the driver."""

import subprocess

from orca_core.ports import wait_for
from orca_core.testing import assert_kill_9_leaves_nothing, leftovers


def test_stop_leaves_no_daemon_executor_or_ray_node(driver_script, marked_env):
    marker, env = marked_env
    out = subprocess.run([*driver_script, "stop"], env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STOPPED" in out.stdout
    wait_for(lambda: not leftovers(marker), 10, "every process to exit")


def test_kill_9_of_the_driver_leaves_nothing_15s_later(driver_script, marked_env):
    running = ("deploy.master.Master", "deploy.worker.Worker", "raylet")
    assert_kill_9_leaves_nothing(driver_script, marked_env, running=running)
