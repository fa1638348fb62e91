"""The local mode end to end: Spark and Ray up, extra_python_lib importable everywhere, handles, loopback."""

import os
import shutil
import subprocess
import sys

import psutil
import pytest

from orca_core import OrcaContext, OrcaError, init_orca_context, state, stop_orca_context
from orca_core.errors import AlreadyRunning, NotRunning


@pytest.fixture(scope="module")
def context(libs):
    before = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "SPARK_LOCAL_IP", "RAY_AUTH_TOKEN", "ORCA_SETTINGS")}
    args = dict(cluster_mode="local", cores=2, memory="1g", init_ray_on_spark=True,
                extra_python_lib=",".join(libs.values()), conf={"spark.app.name": "orca-local-test"})
    sc = init_orca_context(**args)
    yield sc, args, before
    stop_orca_context()


def test_spark_tasks_import_every_kind_of_extra_lib(context):
    sc, _, _ = context

    def use(x):
        import helpers
        import lib3
        import mypkg
        import plainmod

        return helpers.f(x), lib3.g(x), mypkg.VALUE, plainmod.VALUE

    out = sc.parallelize(range(4), 2).map(use).collect()
    assert out[3] == (6, 6, "from a package directory", "from a plain directory")


def test_ray_tasks_import_every_kind_of_extra_lib(context):
    import ray

    @ray.remote
    def use(x):
        import helpers
        import lib3
        import mypkg
        import plainmod

        return helpers.f(x), lib3.g(x), mypkg.VALUE, plainmod.VALUE

    assert ray.get(use.remote(5)) == (10, 8, "from a package directory", "from a plain directory")


def test_workers_run_the_driver_interpreter(context):
    sc, _, _ = context
    import ray

    assert set(sc.parallelize(range(2), 2).map(lambda _: __import__("sys").executable).collect()) == {sys.executable}
    assert ray.get(ray.remote(lambda: __import__("sys").executable).remote()) == sys.executable


def test_handles(context):
    sc, _, _ = context
    assert OrcaContext.get_spark_context() is sc
    assert sc.master == "local[2]"
    assert sc.appName == "orca-local-test"  # the user's conf wins
    assert OrcaContext.get_spark_session().range(7).count() == 7
    ray_ctx = OrcaContext.get_ray_context()
    assert ray_ctx.address.startswith("127.0.0.1:")
    assert ray_ctx.num_nodes == 1
    assert ray_ctx.resources["CPU"] == 2
    assert ray_ctx.dashboard_url.startswith("http://127.0.0.1:")
    from orca_core.context import current

    assert "127.0.0.1" in repr(current()) and ray_ctx.dashboard_url in current()._repr_html_()


def test_same_arguments_return_the_running_context(context):
    sc, args, _ = context
    assert init_orca_context(**args) is sc


def test_other_arguments_ask_to_stop_first(context):
    _, args, _ = context
    with pytest.raises(AlreadyRunning, match="stop_orca_context"):
        init_orca_context(**{**args, "cores": 1})


def test_bad_input_while_running_changes_nothing(context):
    sc, args, _ = context
    with pytest.raises(OrcaError, match="init_ray_on_spark"):
        init_orca_context(**{**args, "init_ray_on_sprak": True})
    assert sc.parallelize([1, 2]).sum() == 3


def _listening(pid):
    """(ip, port) of the listening sockets of `pid`, IPv4-mapped IPv6 addresses written as IPv4."""
    return {(c.laddr.ip.removeprefix("::ffff:"), c.laddr.port)
            for c in psutil.Process(pid).net_connections("tcp") if c.status == "LISTEN"}


def test_http_services_listen_on_loopback_only(context):
    sc, _, _ = context
    jvm = psutil.Process(sc._gateway.proc.pid)
    java = [jvm, *jvm.children(recursive=True)]
    addresses = {addr for p in java if p.name() == "java" for addr in _listening(p.pid)}
    assert addresses, "the JVM listens on nothing?"
    assert {ip for ip, _ in addresses} == {"127.0.0.1"}, addresses
    ui_port = int(sc.uiWebUrl.rsplit(":", 1)[1])
    assert ("127.0.0.1", ui_port) in addresses
    dash_port = int(OrcaContext.get_ray_context().dashboard_url.rsplit(":", 1)[1])
    owners = [c for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == dash_port]
    assert owners and all(c.laddr.ip.removeprefix("::ffff:") == "127.0.0.1" for c in owners), owners


def test_ray_requires_the_context_token(context):
    import subprocess

    address = OrcaContext.get_ray_context().address
    code = f"import ray; ray.init(address='{address}'); print('connected')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = "not-the-token"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "connected" not in out.stdout
    assert out.returncode != 0


def test_the_ray_token_is_on_no_command_line(context):
    token = state.current().ray.token
    lines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not [line[:200] for line in lines if token in line]
    assert any("raylet" in line for line in lines)  # the scan saw the Ray head


def test_init_only_setting_changed_while_running_says_when_it_applies(context):
    with pytest.warns(UserWarning, match="next init_orca_context"):
        OrcaContext.log_output = True
    assert OrcaContext.log_output is True


def test_stop_restores_the_environment_and_is_idempotent(context):
    _, _, before = context
    stop_orca_context()
    stop_orca_context()
    assert {k: os.environ.get(k) for k in before} == before
    with pytest.raises(NotRunning):
        OrcaContext.get_spark_context()
    import ray

    assert not ray.is_initialized()


def test_a_new_context_after_stop(libs):
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", extra_python_lib=libs["py"])
    try:
        assert sc.master == "local[1]"
        assert sc.parallelize([1]).map(lambda x: __import__("helpers").f(x)).collect() == [2]
        with pytest.raises(NotRunning, match="init_ray_on_spark=True"):
            OrcaContext.get_ray_context()
    finally:
        stop_orca_context()


def test_a_local_cluster_leaves_no_work_folder_in_the_pyspark_install():
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", conf={"spark.master": "local-cluster[1,1,1024]"})
    try:
        assert sc.parallelize(range(10), 2).sum() == 45
        work = os.path.join(sc._jvm.System.getenv("SPARK_HOME"), "work", sc.applicationId)
        assert os.path.isfile(os.path.join(work, "0", "stderr"))  # where the executor ran
    finally:
        stop_orca_context()
    assert not os.path.exists(work)


def test_a_local_cluster_removes_the_work_folders_of_orca_drivers_that_died():
    from orca_core.engines.spark import DRIVER_MARKER

    gone = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    started = psutil.Process(gone.pid).create_time()
    gone.communicate(b"\n")
    home = os.path.dirname(__import__("pyspark").__file__)
    folders = {}
    for name, owner in (("dead", f"{gone.pid} {started!r}"),
                        ("alive", f"{os.getpid()} {psutil.Process().create_time()!r}"), ("not-orca", None)):
        folders[name] = os.path.join(home, "work", f"app-19700101000000-{name}")
        os.makedirs(os.path.join(folders[name], "0"))
        if owner:
            with open(os.path.join(folders[name], DRIVER_MARKER), "w") as out:
                out.write(owner)
    try:
        sc = init_orca_context(cluster_mode="local", cores=1, memory="1g",
                               conf={"spark.master": "local-cluster[1,1,1024]"})
        try:
            with open(os.path.join(home, "work", sc.applicationId, DRIVER_MARKER)) as held:
                assert held.read().split()[0] == str(os.getpid())
        finally:
            stop_orca_context()
        assert not os.path.exists(folders["dead"])
        assert os.path.isdir(folders["alive"]) and os.path.isdir(folders["not-orca"])
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
