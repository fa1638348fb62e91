"""Two threads calling init and stop at once: one context at a time, and nothing left after the last stop."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from orca_core.ports import wait_for
from orca_core.testing import leftovers

DRIVER = """
    import threading
    from orca_core import init_orca_context, stop_orca_context

    errors = []

    def cycle():
        try:
            for _ in range(2):
                sc = init_orca_context(cluster_mode="local", cores=1, memory="1g")
                try:
                    sc.parallelize(range(4)).count()
                except Exception:
                    pass  # the other thread may stop the context under this job
                stop_orca_context()
        except BaseException as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=cycle) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop_orca_context()
    print("ERRORS", errors, flush=True)
    import sys
    sys.stdin.readline()
"""


def test_two_threads_starting_and_stopping_leave_nothing(marked_env, tmp_path):
    marker, env = marked_env
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        assert driver.stdout.readline().strip() == "ERRORS []"
        try:
            wait_for(lambda: not [p for p in leftovers(marker) if p[0] != driver.pid], 15, "the JVMs to exit")
        except TimeoutError:
            raise AssertionError(f"left running: {leftovers(marker)}") from None
        driver.stdin.write("\n")
        driver.stdin.flush()
        assert driver.wait(timeout=30) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
