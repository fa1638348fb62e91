"""A child forked by the driver keeps nothing alive: stop is as complete, and about as fast, with it as without it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from orca_core.ports import wait_for
from orca_core.testing import leftovers

DRIVER = """
    import multiprocessing, sys, time
    from orca_core import init_orca_context, stop_orca_context

    def child(conn):
        conn.recv()  # holds every handle it inherited until told to go
        stop_orca_context()  # a child's stop (and its atexit) stops nothing of its parent's

    def cycle(fork):
        sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", init_ray_on_spark=True,
                               include_webui=False)
        assert sc.parallelize(range(4)).count() == 4
        proc = None
        if fork:
            parent_end, child_end = multiprocessing.Pipe()
            proc = multiprocessing.get_context("fork").Process(target=child, args=(child_end,))
            proc.start()
        started = time.monotonic()
        stop_orca_context()
        return time.monotonic() - started, proc, parent_end if fork else None

    alone, _, _ = cycle(fork=False)
    forked, proc, parent_end = cycle(fork=True)
    print("STOPPED", proc.pid, f"{alone:.2f}", f"{forked:.2f}", flush=True)
    sys.stdin.readline()
    parent_end.send("go")
    proc.join()
    print("CHILD", proc.exitcode, flush=True)
"""


def test_stop_with_a_forked_child_alive_stops_every_process_as_fast(marked_env, short_tmp):
    marker, env = marked_env
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER)], env={**env, "TMPDIR": short_tmp},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              cwd=short_tmp)
    try:
        word, child, alone, forked = driver.stdout.readline().split()
        assert word == "STOPPED"
        # a child that kept a pipe of the driver's open would make stop wait out a timeout (20 s and more)
        assert float(forked) <= 4 * float(alone), f"stop took {forked} s with a forked child, {alone} s without"
        ours = {driver.pid, int(child)}
        try:
            wait_for(lambda: not [p for p in leftovers(marker) if p[0] not in ours] and not os.listdir(short_tmp), 10,
                     "the engines to exit and their files to be removed")
        except TimeoutError:
            raise AssertionError(f"alive beside the forked child: {leftovers(marker)}, "
                                 f"files {os.listdir(short_tmp)}") from None
        driver.stdin.write("\n")
        driver.stdin.flush()
        assert driver.stdout.readline().split() == ["CHILD", "0"]
        assert driver.wait(timeout=30) == 0
        wait_for(lambda: not leftovers(marker), 10, "every process to exit")
        assert os.listdir(short_tmp) == []
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
