"""A standalone cluster Orca starts, with Ray on it, leaves nothing after stop or after kill -9 of the driver."""

import signal
import subprocess

from orca_core.ports import wait_for
from orca_core.testing import leftovers


def _left(marker):
    return leftovers(marker)


def test_stop_leaves_no_daemon_executor_or_ray_node(driver_script, marked_env):
    marker, env = marked_env
    out = subprocess.run([*driver_script, "stop"], env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STOPPED" in out.stdout
    wait_for(lambda: not _left(marker), 10, "every process to exit")


def test_kill_9_of_the_driver_leaves_nothing_15s_later(driver_script, marked_env):
    marker, env = marked_env
    proc = subprocess.Popen([*driver_script, "hang"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "UP"
        commands = " ".join(cmd for _, _, cmd in _left(marker))
        for expected in ("deploy.master.Master", "deploy.worker.Worker", "raylet"):
            assert expected in commands or expected in {n for _, n, _ in _left(marker)}, expected
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            wait_for(lambda: not _left(marker), 15, "every process to exit")
        except TimeoutError:
            raise AssertionError(f"left running 15 s after kill -9: {_left(marker)}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
