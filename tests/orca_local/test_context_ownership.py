"""Only the process that started a context stops it, and a stopped context leaves no secret behind."""

import atexit
import multiprocessing
import os

from orca_core import init_orca_context, state, stop_orca_context


def _child_exits():
    stop_orca_context()  # a forked child's stop, and its at-exit handlers, stop nothing of the parent's
    atexit._run_exitfuncs()


def test_a_forked_child_that_stops_and_exits_leaves_the_parents_context_running():
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g")
    try:
        child = multiprocessing.get_context("fork").Process(target=_child_exits)
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert state.current() is not None
        assert sc.parallelize(range(10), 2).sum() == 45
    finally:
        stop_orca_context()


def test_the_ray_token_leaves_the_environment_at_stop():
    before = dict(os.environ)
    init_orca_context(cluster_mode="local", cores=1, memory="1g", init_ray_on_spark=True, include_webui=False)
    try:
        token = state.current().ray.token
        assert os.environ.get("RAY_AUTH_TOKEN") == token  # the driver holds it while Ray runs
    finally:
        stop_orca_context()
    assert token not in os.environ.values()
    assert {k: v for k, v in os.environ.items() if k.startswith("RAY_AUTH")} == \
        {k: v for k, v in before.items() if k.startswith("RAY_AUTH")}
