"""run_data_creator: with serialize_data_creator, concurrent workers of a node download once.

The workload: every task announces itself, then runs a creator that writes `data.txt` unless it
exists, non-atomically: the first half, then (once every task has arrived, and for at most
WINDOW seconds until the others have looked at the file) the second half. Without the lock the
others find the file missing too (it is written twice) or read it half-written; with the lock they
wait and read it whole.
"""

import json
import multiprocessing
import os
import sys
import threading
import uuid
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from orca_core import OrcaContext, OrcaError, init_orca_context, stop_orca_context
from orca_core.data import run_data_creator
from orca_core.data.creators import LOCK_DIR_ENV, creator_lock, lock_dir, lock_path
from orca_core.ports import wait_for
from orca_core.settings import SETTINGS_ENV

HEAD, TAIL = "first half\n", "second half\n"
WINDOW = 2.0  # how long a writer holds the file half-written while nobody else looks at it


def _creator(config, batch_size):
    work, me, tasks = Path(config["dir"]), config["task"], config["tasks"]
    data = work / "data.txt"
    if not data.exists():
        with open(work / "writes", "a") as log:
            log.write(f"{me}\n")
        with open(data, "w") as f:
            f.write(HEAD)
            f.flush()
            wait_for(lambda: all((work / f"arrived-{t}").exists() for t in range(tasks)), 60, "every task")
            try:
                wait_for(lambda: all((work / f"looked-{t}").exists() for t in range(tasks) if t != me), WINDOW,
                         "the other tasks to look at the file")
            except TimeoutError:
                pass  # serialized: the others are waiting for the lock
            f.write(TAIL)
    content = data.read_text()
    (work / f"looked-{me}").touch()
    return content


def _task(work, me, tasks, key, serialize=None):
    """What each worker runs; `serialize` overrides the inherited setting for this call only."""
    inherited = OrcaContext.serialize_data_creator
    if serialize is not None:
        OrcaContext.serialize_data_creator = serialize
    try:
        (Path(work) / f"arrived-{me}").touch()
        content = run_data_creator(_creator, {"dir": work, "task": me, "tasks": tasks}, 32, key=key)
    finally:
        OrcaContext.serialize_data_creator = inherited
    return {"content": content, "inherited": inherited, "lock": str(lock_path(key)), "pid": os.getpid()}


def _outcome(work, results):
    writes = (Path(work) / "writes").read_text().split()
    return len(writes), [r["content"] for r in results]


def _assert_written_once(work, results):
    writes, contents = _outcome(work, results)
    assert writes == 1 and contents == [HEAD + TAIL] * len(results), (writes, contents)


def _assert_race(work, results):
    writes, contents = _outcome(work, results)
    assert writes > 1 or any(c != HEAD + TAIL for c in contents), (writes, contents)


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return str(path)


@pytest.fixture
def key():
    return f"test-{uuid.uuid4().hex}"


def _process_main(work, me, tasks, key, queue):
    queue.put(_task(work, me, tasks, key))


@pytest.mark.parametrize("serialize", [True, False])
def test_processes_of_a_node_race_without_the_lock_and_not_with_it(work, key, serialize, monkeypatch):
    """Spawned processes inherit the setting the way workers do, through ORCA_SETTINGS."""
    monkeypatch.setenv(SETTINGS_ENV, json.dumps({"serialize_data_creator": serialize}))
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    procs = [spawn.Process(target=_process_main, args=(work, me, 3, key, queue)) for me in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert {r["inherited"] for r in results} == {serialize}
    (_assert_written_once if serialize else _assert_race)(work, results)


def _hold(key, entered, release):
    def creator(config, batch_size):
        entered.set()
        release.wait(60)
        return config, batch_size

    return threading.Thread(target=run_data_creator, args=(creator, "cfg", 8), kwargs={"key": key})


def _free(key) -> bool:
    probe = FileLock(str(lock_path(key)))
    try:
        probe.acquire(blocking=False)
    except Timeout:
        return False
    probe.release()
    return True


def test_the_lock_is_held_while_the_creator_runs_and_keys_do_not_block_each_other(key):
    OrcaContext.serialize_data_creator = True
    entered, release = threading.Event(), threading.Event()
    holder = _hold(key, entered, release)
    holder.start()
    try:
        assert entered.wait(30)
        assert not _free(key)
        assert _free(key + "-other")
        assert run_data_creator(lambda c, b: (c, b), "other", 4, key=key + "-other") == ("other", 4)
    finally:
        release.set()
        holder.join(30)
    assert _free(key)


def test_without_the_setting_no_lock_is_taken(key):
    entered, release = threading.Event(), threading.Event()
    holder = _hold(key, entered, release)
    holder.start()
    try:
        assert entered.wait(30)
        assert _free(key)
    finally:
        release.set()
        holder.join(30)


def test_the_lock_is_reentrant_in_one_thread(key):
    OrcaContext.serialize_data_creator = True
    inner = lambda c, b: run_data_creator(lambda c2, b2: c2 + b2, c, b, key=key)  # noqa: E731
    assert run_data_creator(inner, 1, 2, key=key) == 3
    assert creator_lock(key) is creator_lock(key)


def test_lock_folder_is_private_and_must_belong_to_the_user(tmp_path, monkeypatch):
    folder = tmp_path / "locks"
    monkeypatch.setenv(LOCK_DIR_ENV, str(folder))
    assert lock_dir() == folder and (folder.stat().st_mode & 0o777) == 0o700
    folder.chmod(0o755)
    lock_dir()
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert lock_path("a b/c").parent == folder and lock_path("a b/c") != lock_path("a-b-c")
    if os.getuid() == 0:
        os.chown(folder, 65534, 65534)
        with pytest.raises(OrcaError, match="belongs to uid 65534"):
            lock_dir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv(LOCK_DIR_ENV, str(link))
    with pytest.raises(OrcaError, match="not a folder"):
        lock_dir()


def test_default_lock_folder_is_per_user_under_the_temp_dir(monkeypatch):
    import tempfile

    monkeypatch.delenv(LOCK_DIR_ENV, raising=False)
    assert lock_dir() == Path(tempfile.gettempdir(), f"orca-locks-{os.getuid()}")


@pytest.mark.parametrize("bad", [3, "", b"k"])
def test_bad_key_is_rejected(bad):
    with pytest.raises(OrcaError, match="non-empty string or None"):
        lock_path(bad)


def test_creator_must_be_callable():
    with pytest.raises(OrcaError, match=r"creator\(config, batch_size\), got str"):
        run_data_creator("download", {}, 1)


# Spark and Ray workers: the setting is set on the driver before init and observed in the workers.


@pytest.fixture(scope="module")
def context():
    from pyspark import cloudpickle as spark_pickle
    from ray import cloudpickle as ray_pickle

    module = sys.modules[__name__]
    spark_pickle.register_pickle_by_value(module)
    ray_pickle.register_pickle_by_value(module)
    OrcaContext.serialize_data_creator = True
    sc = init_orca_context(cluster_mode="local", cores=2, init_ray_on_spark=True)
    OrcaContext.reset()
    yield sc
    stop_orca_context()


@pytest.mark.parametrize("serialize", [None, False])
def test_spark_tasks(context, work, key, serialize):
    results = context.parallelize(range(2), 2).map(lambda me: _task(work, me, 2, key, serialize)).collect()
    assert OrcaContext.serialize_data_creator is False  # the driver was reset; workers kept the value of init
    assert len({r["pid"] for r in results}) == 2
    assert {r["inherited"] for r in results} == {True}
    assert {r["lock"] for r in results} == {str(lock_path(key))}
    (_assert_written_once if serialize is None else _assert_race)(work, results)


@pytest.mark.parametrize("serialize", [True, False])
def test_ray_tasks(context, work, key, serialize):
    """Ray workers started with the driver's ORCA_SETTINGS (True at init), or with False in their environment."""
    import ray

    env = {} if serialize else {"env_vars": {SETTINGS_ENV: json.dumps({"serialize_data_creator": False})}}
    remote = ray.remote(num_cpus=1, runtime_env=env)(_task)
    results = ray.get([remote.remote(work, me, 2, key) for me in range(2)], timeout=180)
    assert len({r["pid"] for r in results}) == 2
    assert {r["inherited"] for r in results} == {serialize}
    assert {r["lock"] for r in results} == {str(lock_path(key))}
    (_assert_written_once if serialize else _assert_race)(work, results)
