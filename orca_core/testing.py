"""A pytest plugin for Orca and for authors of Orca plugins.

Installed with orca-core (entry point `pytest11`), it provides:

- `fake_distribution`: install a fake distribution (a `*.dist-info` with `entry_points.txt`)
  on `sys.path` for the test, to exercise plugin discovery without installing anything;
- `orca_registry`: a fresh plugin registry for the test;
- `marked_env`, `leftovers`, `write_driver` and `assert_kill_9_leaves_nothing`: run a driver
  program in its own process and check that nothing it started outlives it;
- `spark_admits`: whether a Spark master registers another application without (or with) a secret;
- `master_rpc_admits`: whether a Spark master answers the RPC connection of a client with (or without) a secret;
- `driver_admits`: whether a Spark driver's RPC server answers a client that holds no secret;
- `ClusterModeConformance`: tests every cluster-mode plugin must pass. Subclass it in your
  plugin's tests and set `cluster_mode` (and `options`, the keyword options a valid call needs):

      from orca_core.testing import ClusterModeConformance

      class TestMyMode(ClusterModeConformance):
          cluster_mode = "mycluster"
          options = {"master": "my://host"}
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from orca_core.errors import ConfigError, OrcaError

MARKER = "ORCA_TEST_MARK"


def processes_with_env(key: str, value: str) -> list[tuple[int, str, str]]:
    """(pid, name, command line) of live processes whose environment has `key=value`.

    Every process a driver starts inherits its environment, so a marker variable set for a
    driver finds all it left behind, however deep or re-parented."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(key) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append((proc.pid, proc.name(), " ".join(proc.cmdline())))
        except psutil.Error:
            continue
    return found


def leftovers(marker: str) -> list[tuple[int, str, str]]:
    """Processes still running from a driver started with `marked_env`."""
    return processes_with_env(MARKER, marker)


@pytest.fixture
def marked_env():
    """(marker, env): run a driver with `env`, then `leftovers(marker)` lists what outlived it."""
    marker = os.urandom(8).hex()
    yield marker, {**os.environ, MARKER: marker}
    import psutil

    for pid, _, _ in leftovers(marker):
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


DRIVER_END = """
print("UP", flush=True)
if sys.argv[1] == "stop":
    stop_orca_context()
    print("STOPPED", flush=True)
elif sys.argv[1] == "hang":
    sys.stdin.read()
"""


def write_driver(folder: Path, source: str) -> list[str]:
    """Write a driver program and return its command; give it a mode as the last argument.

    `source` starts a context; then the driver prints "UP" and, by mode: "stop" stops the context
    and prints "STOPPED", "hang" waits on stdin (to be killed), anything else exits (atexit stops)."""
    path = Path(folder) / "driver.py"
    path.write_text("import sys\nfrom orca_core import stop_orca_context\n" + textwrap.dedent(source) + DRIVER_END)
    return [sys.executable, str(path)]


def assert_kill_9_leaves_nothing(command: list[str], marked: tuple[str, dict], running: tuple[str, ...],
                                 within: float = 15.0) -> None:
    """Run `command hang` with the `marked_env` pair and a TMPDIR of its own (the pair's, when it sets one other
    than this process's); once it is up, check each of `running` shows in a process name or command line, SIGKILL
    the driver, and assert none of its processes, and no file or folder in that TMPDIR, is left `within` s later."""
    import shutil
    import signal
    import subprocess
    import tempfile

    from orca_core.ports import wait_for

    marker, env = marked
    given = env.get("TMPDIR") not in (None, os.environ.get("TMPDIR"))
    tmp = env["TMPDIR"] if given else tempfile.mkdtemp(prefix="o9-", dir="/tmp")  # short: Ray's socket paths
    proc = subprocess.Popen([*command, "hang"], env={**env, "TMPDIR": tmp}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "UP"
        seen = " ".join(f"{name} {cmd}" for _, name, cmd in leftovers(marker))
        for expected in running:
            assert expected in seen, f"{expected} is not running: {seen[:3000]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            wait_for(lambda: not leftovers(marker) and not os.listdir(tmp), within,
                     "every process to exit and every file to be removed")
        except TimeoutError:
            raise AssertionError(f"left {within:.0f} s after kill -9: processes {leftovers(marker)}, files in the "
                                 f"driver's TMPDIR {sorted(os.listdir(tmp))}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        if not given:
            shutil.rmtree(tmp, ignore_errors=True)


OUTSIDER = """
    import sys
    from pyspark import SparkConf, SparkContext

    conf = SparkConf().setMaster(sys.argv[1]).setAppName("outsider").set("spark.cores.max", "1")
    conf.set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
    conf.set("spark.authenticate", "true").set("spark.authenticate.secret", sys.argv[2])
    try:
        sc = SparkContext(conf=conf)
    except Exception as error:
        print("REFUSED", type(error).__name__, flush=True)
        sys.exit(0)
    # registered with the master: an id the master gave ("app-..."), not Spark's own placeholder
    print("ADMITTED" if sc.applicationId.startswith("app-") else "REFUSED", sc.applicationId, flush=True)
    sc.stop()
"""


def spark_admits(master: str, secret: str | None = None, timeout: float = 240.0) -> bool:
    """Whether the Spark master `master` (spark://host:port) registers another application, run in a process
    of its own, that holds `secret`: a cluster a plugin starts must refuse one without it. Without a secret the
    application's first step, its RPC connection to the master, is tried alone: an authenticated master
    refuses it at once, where a whole SparkContext would retry its registration for a minute first."""
    import subprocess

    if secret is None:
        return master_rpc_admits(master, timeout=timeout)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(OUTSIDER), master, secret],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    verdicts = [line.split()[0] for line in done.stdout.splitlines() if line.startswith(("REFUSED", "ADMITTED"))]
    assert verdicts, f"the application printed no verdict:\n{done.stdout}\n{done.stderr[-3000:]}"
    return verdicts[-1] == "ADMITTED"


def master_rpc_admits(master: str, secret: str | None = None, timeout: float = 240.0) -> bool:
    """Whether the Spark master `master` (spark://host:port) answers the RPC connection of a client, in a JVM
    of its own, that holds `secret` (None: no secret), as `spark_admits` tries it without one: with the secret
    the same probe must be admitted, or a refusal proves nothing."""
    return _rpc_admits(f"spark://Master@{master.removeprefix('spark://')}", timeout, secret)


PEER = """
    import os
    import sys

    from pyspark.java_gateway import launch_gateway

    jvm = launch_gateway().jvm
    conf = jvm.org.apache.spark.SparkConf(False).set("spark.rpc.lookupTimeout", "30s")
    if os.environ.get("_SPARK_AUTH_SECRET"):  # Spark's SecurityManager reads the secret there
        conf.set("spark.authenticate", "true")
    none = getattr(getattr(jvm.scala, "None$"), "MODULE$")
    secret_file = getattr(getattr(jvm.org.apache.spark.internal.config, "package$"), "MODULE$").AUTH_SECRET_FILE_DRIVER()
    rpc = jvm.org.apache.spark.rpc.RpcEnv.create("peer", "127.0.0.1", 0, conf,
                                                 jvm.org.apache.spark.SecurityManager(conf, none, secret_file), True)
    try:
        rpc.setupEndpointRefByURI(sys.argv[1])
        print("ADMITTED", flush=True)
    except Exception as error:
        print("REFUSED", str(error).splitlines()[-1][:300], flush=True)
    rpc.shutdown()
"""


def driver_admits(address: str, timeout: float = 240.0) -> bool:
    """Whether the RPC server of a Spark driver at `address` (host:port, its `spark.driver.port`) finds an
    endpoint for a client, in a JVM of its own, that holds no secret: an authenticated driver refuses it."""
    return _rpc_admits(f"spark://BlockManagerMaster@{address}", timeout)


def _rpc_admits(uri: str, timeout: float, secret: str | None = None) -> bool:
    """Whether a Spark RPC client, in a JVM of its own, finds the endpoint `uri`; `secret` reaches it in its
    environment, never on a command line."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "_SPARK_AUTH_SECRET"}
    if secret is not None:
        env["_SPARK_AUTH_SECRET"] = secret
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(PEER), uri], capture_output=True, text=True,
                          timeout=timeout, env=env)
    verdicts = [line.split()[0] for line in done.stdout.splitlines() if line.startswith(("REFUSED", "ADMITTED"))]
    assert verdicts, f"the client printed no verdict:\n{done.stdout}\n{done.stderr[-3000:]}"
    return verdicts[-1] == "ADMITTED"


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Make a fake installed distribution: `fake_distribution(name, {"ep": "module"}, {"module.py": src})`."""
    from orca_core.plugins import reload_plugins

    def make(name: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0"):
        root = tmp_path / f"site-{name}"
        info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        eps = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[orca]\n{eps}")
        for filename, source in modules.items():
            path = root / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(root))
        for module in modules:
            sys.modules.pop(Path(module).stem, None)
        reload_plugins()
        return root

    yield make
    reload_plugins()


@pytest.fixture
def orca_registry():
    """A registry built fresh from what is installed now."""
    from orca_core.plugins import get_plugin_manager

    return get_plugin_manager()


class ClusterModeConformance:
    """Behaviour every cluster mode must show. Planning only: nothing is started."""

    cluster_mode: str = ""
    options: dict = {}
    accepts_conf: bool = True

    def plan(self, **kwargs):
        from orca_core import plan_orca_context

        return plan_orca_context(cluster_mode=self.cluster_mode, **{**self.options, **kwargs})

    def test_mode_is_registered(self, orca_registry):
        mode = orca_registry.cluster_mode(self.cluster_mode)
        assert self.cluster_mode in mode.names
        assert mode.summary

    def test_aliases_select_the_same_mode(self, orca_registry):
        mode = orca_registry.cluster_mode(self.cluster_mode)
        for alias in mode.aliases:
            assert orca_registry.cluster_mode(alias) is mode

    def test_plan_is_json_data(self):
        plan = self.plan(cores=1, memory="1g")
        data = json.loads(plan.to_json())
        assert data["cluster_mode"] in {self.cluster_mode, *self._names()}
        for key, value in plan.spark_conf.items():
            assert isinstance(key, str) and isinstance(value, str), (key, value)
        for key, value in plan.env.items():
            assert isinstance(key, str) and isinstance(value, str), (key, value)
        if plan.submit_argv is not None:
            assert all(isinstance(arg, str) for arg in plan.submit_argv)

    def test_planning_starts_nothing(self):
        import psutil

        before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.plan(cores=1)
        after = {p.pid for p in psutil.Process().children(recursive=True)}
        assert after <= before

    def test_user_conf_wins_or_is_refused(self):
        conf = {"spark.app.name": "conformance-app", "spark.task.maxFailures": "7"}
        if not self.accepts_conf:
            with pytest.raises(ConfigError, match="spark.app.name"):
                self.plan(conf=conf)
            return
        plan = self.plan(conf=conf)
        assert plan.spark_conf["spark.app.name"] == "conformance-app"
        assert plan.spark_conf["spark.task.maxFailures"] == "7"

    def test_unknown_option_names_the_closest(self):
        with pytest.raises(ConfigError, match="init_ray_on_spark"):
            self.plan(init_ray_on_sprak=True)

    @pytest.mark.parametrize("bad", [{"cores": 0}, {"cores": "four"}, {"memory": "2 gigs"}, {"num_nodes": 0}])
    def test_bad_resources_are_orca_errors(self, bad):
        with pytest.raises(OrcaError):
            self.plan(**bad)

    def _names(self):
        from orca_core.plugins import registry

        return set(registry().cluster_mode(self.cluster_mode).names)
