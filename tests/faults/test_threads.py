"""Two threads calling init and stop at once: one context at a time, and nothing left after the last stop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

from orca_core.ports import wait_for
from orca_core.testing import leftovers

DRIVER = """
    import json, sys, threading
    from orca_core import init_orca_context, stop_orca_context

    errors, jobs = [], []
    start = threading.Barrier(2)

    def cycle():
        try:
            start.wait()
            for _ in range(2):
                sc = init_orca_context(cluster_mode="local", cores=1, memory="1g")
                try:
                    jobs.append(sc.parallelize(range(4)).count())
                except Exception as e:  # the other thread may stop the context under this job
                    jobs.append(f"{type(e).__name__}: {e}")
                stop_orca_context()
        except BaseException as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=cycle) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop_orca_context()
    print(json.dumps({"errors": errors, "jobs": jobs}), flush=True)
    sys.stdin.readline()
"""

# what a job says when the other thread stopped its context under it: Spark's words, or what pyspark meets when
# the JVM or the context's temporary folder has gone
STOPPED_UNDER_IT = re.compile(
    r"(?s).*(SparkContext (was|has been) shut ?down|Cannot call methods on a stopped SparkContext"
    r"|'NoneType' object has no attribute '_jsc'|No such file or directory: '[^']*/pyspark-[^']*'"
    r"|ConnectionRefusedError|Answer from Java side is empty|trying to connect to the Java server)")


def test_two_threads_starting_and_stopping_leave_nothing(marked_env, short_tmp):
    marker, env = marked_env
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER)], env={**env, "TMPDIR": short_tmp},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              cwd=short_tmp)
    try:
        said = json.loads(driver.stdout.readline())
        assert said["errors"] == []
        assert len(said["jobs"]) == 4 and 4 in said["jobs"], said["jobs"]
        for job in said["jobs"]:
            assert job == 4 or STOPPED_UNDER_IT.match(job), job
        try:
            wait_for(lambda: not [p for p in leftovers(marker) if p[0] != driver.pid] and not os.listdir(short_tmp),
                     15, "the JVMs to exit and their files to be removed")
        except TimeoutError:
            raise AssertionError(f"left: {leftovers(marker)}, files {os.listdir(short_tmp)}") from None
        driver.stdin.write("\n")
        driver.stdin.flush()
        assert driver.wait(timeout=30) == 0
        assert os.listdir(short_tmp) == []
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
