"""A child forked by the driver keeps nothing alive: stop is as complete with it as without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from orca_core.ports import wait_for
from orca_core.testing import leftovers

DRIVER = """
    import multiprocessing, sys, time
    from orca_core import init_orca_context, stop_orca_context

    def child(conn):
        conn.recv()  # holds every handle it inherited until told to go
        stop_orca_context()  # a child's stop (and its atexit) stops nothing of its parent's

    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", init_ray_on_spark=True, include_webui=False)
    assert sc.parallelize(range(4)).count() == 4
    parent_end, child_end = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=child, args=(child_end,))
    proc.start()
    started = time.monotonic()
    stop_orca_context()
    print("STOPPED", proc.pid, f"{time.monotonic() - started:.1f}", flush=True)
    sys.stdin.readline()
    parent_end.send("go")
    proc.join()
    print("CHILD", proc.exitcode, flush=True)
"""


def test_stop_with_a_forked_child_alive_stops_every_process(marked_env, tmp_path):
    marker, env = marked_env
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        started = time.monotonic()
        word, child, seconds = driver.stdout.readline().split()
        assert word == "STOPPED"
        ours = {driver.pid, int(child)}
        try:
            wait_for(lambda: not [p for p in leftovers(marker) if p[0] not in ours], 10, "the engines to exit")
        except TimeoutError:
            raise AssertionError(f"alive beside the forked child: {leftovers(marker)}") from None
        print(f"stop took {seconds} s with a forked child ({time.monotonic() - started:.1f} s in all)")
        driver.stdin.write("\n")
        driver.stdin.flush()
        assert driver.stdout.readline().split() == ["CHILD", "0"]
        assert driver.wait(timeout=30) == 0
        wait_for(lambda: not leftovers(marker), 10, "every process to exit")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
