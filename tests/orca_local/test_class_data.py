"""The driver JVM's class-data archive: recorded by the first driver, mapped by the next ones."""

import subprocess
import sys

import psutil
import pytest

from orca_core import init_orca_context, stop_orca_context
from orca_core.engines import class_data, jit

EXECUTOR = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
LOCAL_CLUSTER = "local-cluster[1,1,1024]"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path))
    return tmp_path / "jvm"


def _jvm(pid):
    """The command line and mapped files of process `pid`."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().decode().split("\0")
    with open(f"/proc/{pid}/maps") as f:
        return cmdline, f.read()


def _run_driver(conf=None, executors=None):
    """Start a local Spark context, run a job, and return the driver JVM's command line and mapped files
    (and, in `executors`, those of each executor JVM)."""
    from orca_core.context import current

    sc = init_orca_context(cluster_mode="local", cores=1, conf=conf)
    try:
        assert sc.parallelize(range(10)).sum() == 45
        pid = current().spark.gateway.proc.pid
        cmdline, maps = _jvm(pid)
        for child in psutil.Process(pid).children(recursive=True) if executors is not None else ():
            try:
                if EXECUTOR in child.cmdline():
                    executors.append(_jvm(child.pid))
            except psutil.Error:  # a short-lived helper that already exited
                pass
    finally:
        stop_orca_context()
    return cmdline, maps


def test_the_first_driver_records_the_archive_and_the_next_one_maps_it(cache, capfd):
    archive = class_data.for_driver({})
    assert archive.recording is not None and not archive.path.exists()
    cmdline, _ = _run_driver()
    assert any(arg.startswith("-XX:ArchiveClassesAtExit=") for arg in cmdline)
    assert archive.path.is_file() and archive.path.stat().st_size > 1_000_000
    assert not list(cache.glob("*.recording"))

    cmdline, maps = _run_driver()
    assert f"-XX:SharedArchiveFile={archive.path}" in cmdline
    assert str(archive.path) in maps  # the JVM mapped it, not only was told about it
    assert "[cds" not in capfd.readouterr().out  # the JVM's CDS messages are muted


def test_a_user_share_option_is_kept_and_nothing_is_recorded(cache):
    cmdline, maps = _run_driver({"spark.driver.extraJavaOptions": "-Xshare:off"})
    assert "-Xshare:off" in cmdline
    assert not [a for a in cmdline if "ArchiveClassesAtExit" in a or "SharedArchiveFile" in a]
    assert not cache.exists() or not list(cache.iterdir())


def test_a_damaged_archive_does_not_stop_the_driver(cache):
    path = class_data.for_driver({}).path
    path.write_bytes(b"not an archive" * 1000)
    cmdline, maps = _run_driver()
    assert f"-XX:SharedArchiveFile={path}" in cmdline and str(path) not in maps


def test_a_failed_driver_leaves_no_recording(cache):
    archive = class_data.for_driver({})
    archive.recording.write_bytes(b"half")
    archive.finish(1)
    assert not archive.recording.exists() and not archive.path.exists()


def test_recordings_of_dead_drivers_are_removed(cache):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    class_data.for_driver({})  # creates the folder
    orphan = cache / f"spark-driver-x.{int(dead.stdout)}.recording"
    mine = class_data.for_driver({}).recording
    orphan.write_bytes(b"partial")
    mine.write_bytes(b"in progress")
    class_data.for_driver({})
    assert not orphan.exists() and mine.exists()


def test_a_conf_folder_on_the_classpath_means_no_archive(cache, tmp_path, monkeypatch):
    conf_dir = tmp_path / "hadoop-conf"
    conf_dir.mkdir()
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf_dir))
    assert class_data.for_driver({}) is not None  # an empty folder is fine
    (conf_dir / "core-site.xml").write_text("<configuration/>")
    assert class_data.for_driver({}) is None


def test_a_classpath_the_jvm_could_not_archive_is_not_tried_again(cache):
    archive = class_data.for_driver({})
    archive.finish(0)  # the JVM exited cleanly and wrote nothing
    assert class_data.for_driver({}) is None


def test_local_cluster_executors_map_the_driver_archive_and_keep_the_user_options_after_it(cache):
    _run_driver()  # records the archive
    archive = class_data.for_driver({})
    executors = []
    _run_driver({"spark.master": LOCAL_CLUSTER, "spark.executor.extraJavaOptions": "-Dorca.mine=1 -Xss2m"}, executors)
    assert len(executors) == 1
    cmdline, maps = executors[0]
    flag = f"-XX:SharedArchiveFile={archive.path}"
    assert flag in cmdline and cmdline.index(flag) < cmdline.index("-Dorca.mine=1") < cmdline.index("-Xss2m")
    assert str(archive.path) in maps  # the executor's class path matched the driver's recorded one


def test_executors_with_a_user_share_option_keep_exactly_what_the_user_set(cache):
    _run_driver()
    executors = []
    _run_driver({"spark.master": LOCAL_CLUSTER, "spark.executor.extraJavaOptions": "-Xshare:off"}, executors)
    cmdline, maps = executors[0]
    assert "-Xshare:off" in cmdline and not [a for a in cmdline if "SharedArchiveFile" in a]


@pytest.mark.parametrize("conf, master", [
    ({}, "yarn"),
    ({}, "spark://10.1.2.3:7077"),
    ({}, "local[2]"),
    ({"spark.executor.extraClassPath": "/opt/extra.jar"}, LOCAL_CLUSTER),
    ({"spark.executor.extraJavaOptions": "-XX:SharedArchiveFile=/mine.jsa"}, LOCAL_CLUSTER),
])
def test_executors_get_the_archive_only_where_they_run_here_on_the_driver_class_path(tmp_path, conf, master):
    archive = class_data.Archive(tmp_path / "a.jsa")
    assert archive.executor_options(conf, master) is None
    assert archive.executor_options({}, LOCAL_CLUSTER).startswith(f"-XX:SharedArchiveFile={archive.path} ")
    assert archive.executor_options({}, "spark://127.0.0.1:7077") is not None
    recording = class_data.Archive(tmp_path / "a.jsa", recording=tmp_path / "a.1.recording")
    assert recording.executor_options({}, LOCAL_CLUSTER) is None  # the archive does not exist yet


def _vm_option(sc, name):
    """The value of HotSpot option `name` in the driver JVM, as the JVM took it."""
    jvm = sc._jvm
    bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
    return bean.getVMOption(name).getValue()


def test_jvms_that_start_here_compile_with_c2_later_and_a_flag_the_user_sets_wins(cache):
    from orca_core.context import current

    executors = []
    sc = init_orca_context(cluster_mode="local", conf={
        "spark.master": LOCAL_CLUSTER, "spark.driver.extraJavaOptions": "-XX:Tier4InvocationThreshold=7000",
        "spark.executor.extraJavaOptions": "-XX:Tier4BackEdgeThreshold=9000"})
    try:
        assert sc.parallelize(range(4), 2).sum() == 6
        assert _vm_option(sc, "Tier4InvocationThreshold") == "7000"  # the user's
        assert _vm_option(sc, "Tier4CompileThreshold") == "150000"  # Orca's
        driver = psutil.Process(current().spark.gateway.proc.pid)
        for child in driver.children(recursive=True):
            try:
                executors += [child.cmdline()] if EXECUTOR in child.cmdline() else []
            except psutil.Error:  # a short-lived helper that already exited
                pass
        assert all(flag in driver.cmdline() for flag in jit.FLAGS)
    finally:
        stop_orca_context()
    assert len(executors) == 1
    cmdline = executors[0]
    assert all(cmdline.index(flag) < cmdline.index("-XX:Tier4BackEdgeThreshold=9000") for flag in jit.FLAGS)


def test_executors_elsewhere_keep_their_jit_defaults():
    assert class_data.executors_run_here("local-cluster[2,1,1024]")
    assert class_data.executors_run_here("spark://127.0.0.1:7077")
    for master in ("yarn", "spark://10.1.2.3:7077", "k8s://https://10.0.0.1:6443", None):
        assert not class_data.executors_run_here(master)
