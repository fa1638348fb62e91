"""Nothing a local context starts outlives it: after stop, at exit, after kill -9, over many cycles."""

import json
import subprocess

from orca_core.ports import wait_for
from orca_core.testing import assert_kill_9_leaves_nothing, leftovers


def _none_left(marker, timeout):
    wait_for(lambda: not leftovers(marker), timeout, "the context's processes to exit")


def _describe(marker):
    return [(pid, name) for pid, name, _ in leftovers(marker)]


def test_stop_leaves_no_process(driver_script, marked_env):
    marker, env = marked_env
    out = subprocess.run([*driver_script, "stop"], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STOPPED" in out.stdout
    assert not _describe(marker), _describe(marker)


def test_exit_without_stop_leaves_no_process(driver_script, marked_env):
    marker, env = marked_env
    out = subprocess.run([*driver_script, "exit"], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    _none_left(marker, 10)


def test_kill_9_of_the_driver_leaves_nothing_15s_later(driver_script, marked_env):
    assert_kill_9_leaves_nothing(driver_script, marked_env, running=("java", "raylet", "gcs_server"))


def _cycles(driver_script, env, count, engines):
    out = subprocess.run([*driver_script, "cycles", str(count), engines], env=env, capture_output=True, text=True,
                         timeout=480)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(seen) == count
    assert all(s["children"] == 0 for s in seen), seen
    assert seen[-1]["threads"] <= seen[1]["threads"] + 2, seen
    return [s["fds"] for s in seen]


def test_spark_cycles_leave_nothing_and_keep_files_flat(driver_script, marked_env):
    marker, env = marked_env
    fds = _cycles(driver_script, env, 4, "spark")
    assert fds[-1] <= fds[1] + 3, fds
    assert not _describe(marker)


def test_ray_cycles_leave_nothing_and_stay_bounded(driver_script, marked_env):
    marker, env = marked_env
    fds = _cycles(driver_script, env, 5, "ray")
    # Ray itself keeps one descriptor per ray.init()/ray.shutdown() of a new cluster in one
    # process (plain Ray 2.60 does the same); Orca adds none.
    assert fds[-1] - fds[1] <= (len(fds) - 2) + 3, fds
    assert not _describe(marker)
