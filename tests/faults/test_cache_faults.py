"""First use of every cache under concurrent processes, a full disk, a write limit, a read-only cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orca_core import pylib
from orca_core.errors import CacheError
from orca_core.shipping import pack_environment

ENTRIES = 12


def temporaries(folder: Path) -> list[str]:
    """Temporary or partial files left anywhere under `folder`."""
    return sorted(str(p) for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".recording"))


def run_together(count: int, source: str, *args: str) -> list[subprocess.CompletedProcess]:
    """Start `count` Python processes running `source`; each waits for a line on stdin, sent to all at once."""
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(source), *args], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(count)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "READY"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def test_processes_materialising_the_same_new_entries_at_once_all_succeed(cache, tmp_path):
    entries = []
    for i in range(ENTRIES):
        (tmp_path / f"mod{i}.py").write_text(f"X = {i}\n")
        package = tmp_path / f"pkg{i}" / f"pkg{i}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"Y = {i}\n")
        entries += [str(tmp_path / f"mod{i}.py"), str(package)]
    results = run_together(6, """
        import json, sys
        from orca_core import pylib
        print("READY", flush=True)
        sys.stdin.readline()
        print(json.dumps([pylib.materialize(entry) for entry in sys.argv[1:]]))
    """, *entries)
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    shipped = {tuple(json.loads(result.stdout.splitlines()[-1])) for result in results}
    assert len(shipped) == 1
    for entry, path in zip(entries, shipped.pop(), strict=True):
        assert Path(path).is_file()
        if entry.endswith(".py"):
            assert (Path(pylib.import_root(entry)) / Path(entry).name).read_text() == Path(entry).read_text()
    assert temporaries(cache) == []


def test_processes_storing_one_new_env_archive_at_once_write_it_once(cache):
    results = run_together(4, """
        import sys
        from orca_core.cache import cache_dir
        from orca_core.shipping import store
        print("READY", flush=True)
        sys.stdin.readline()
        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(b"x" * (1 << 20))
        record, cached = store.store(cache_dir("envs"), "fake-key.tar.gz", write, {"key": "key"})
        print("cached" if cached else "wrote")
    """)
    outcomes = sorted(result.stdout.split()[-1] for result in results if result.returncode == 0)
    assert outcomes == ["cached", "cached", "cached", "wrote"], [r.stderr[-2000:] for r in results]
    assert (cache / "envs" / "fake-key.tar.gz").stat().st_size == 1 << 20
    assert temporaries(cache) == []


def test_drivers_recording_one_new_class_data_archive_at_once_all_start_and_keep_one(cache):
    results = run_together(2, """
        import sys
        from orca_core import init_orca_context, stop_orca_context
        print("READY", flush=True)
        sys.stdin.readline()
        sc = init_orca_context(cluster_mode="local", cores=1, memory="1g")
        try:
            print(sc.parallelize(range(10)).sum())
        finally:
            stop_orca_context()
    """)
    assert [result.stdout.split()[-1:] for result in results] == [["45"], ["45"]], [r.stderr[-2000:] for r in results]
    assert len(list((cache / "jvm").glob("spark-driver-*.jsa"))) == 1
    assert temporaries(cache) == []


def test_packing_onto_a_full_disk_is_a_clear_error_and_keeps_nothing(cache, mount, big_venv):
    mount(cache, "size=2m")
    with pytest.raises(CacheError, match=rf"packing venv environment .* no space left on {cache}/envs"):
        pack_environment(prefix=str(big_venv), compress=False, progress=False)
    assert sorted(p.name for p in (cache / "envs").iterdir() if not p.name.endswith(".lock")) == []


def test_packing_past_a_write_limit_is_a_clear_error_and_keeps_nothing(cache, big_venv):
    source = f"""
        import resource, signal
        from orca_core.errors import CacheError
        from orca_core.shipping import pack_environment
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            pack_environment(prefix={str(big_venv)!r}, compress=False, progress=False)
        except CacheError as e:
            print(e)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                            env={**os.environ, "ORCA_CACHE_DIR": str(cache)}, timeout=120)
    assert "file size limit reached on" in result.stdout, result.stderr[-3000:]
    assert str(cache / "envs") in result.stdout
    assert sorted(p.name for p in (cache / "envs").iterdir() if not p.name.endswith(".lock")) == []


def test_zipping_a_lib_onto_a_full_disk_is_a_clear_error_and_keeps_nothing(cache, mount, tmp_path):
    mount(cache, "size=1m")
    package = tmp_path / "bigpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "blob.bin").write_bytes(os.urandom(2 << 20))
    with pytest.raises(CacheError, match=rf"zipping extra_python_lib entry {package} failed: no space left"):
        pylib.materialize(str(package))
    assert list((cache / "pylib").iterdir()) == []


def test_a_read_only_cache_starts_spark_without_its_archive_and_fails_libs_and_packing_clearly(cache, mount, tmp_path,
                                                                                                capfd, big_venv):
    from orca_core import init_orca_context, state, stop_orca_context

    (tmp_path / "mod.py").write_text("X = 1\n")
    mount(cache, "ro")
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g")
    try:
        assert sc.parallelize(range(4)).sum() == 6
    finally:
        stop_orca_context()
    said = [line for line in capfd.readouterr().err.splitlines() if "class-data archive" in line]
    assert said == ["orca: the Spark driver starts without its class-data archive (it only speeds the start up): "
                    f"cannot use the Orca cache folder {cache}/jvm: Read-only file system. Point ORCA_CACHE_DIR at a "
                    "writable folder of your own"]
    with pytest.raises(CacheError, match=rf"cannot use the Orca cache folder {cache}/pylib: .*ORCA_CACHE_DIR"):
        init_orca_context(cluster_mode="local", cores=1, memory="1g", extra_python_lib=str(tmp_path / "mod.py"))
    assert state.running is None
    with pytest.raises(CacheError, match=rf"cannot use the Orca cache folder {cache}/envs: .*ORCA_CACHE_DIR"):
        pack_environment(prefix=str(big_venv), progress=False)


def test_a_node_whose_cache_fills_while_unpacking_fails_init_naming_it(cache, mount, big_venv, tmp_path):
    from orca_standalone.daemons import LocalStandaloneCluster

    from orca_core import init_orca_context, state
    from orca_core.errors import NodeEnvironmentError

    archive = pack_environment(prefix=str(big_venv), progress=False).path
    envs = mount(tmp_path / "envs", "size=2m")
    cluster = LocalStandaloneCluster(str(tmp_path / "cluster"), workers=1, cores=1, memory_mb=1024)
    master = cluster.start()
    try:
        with pytest.raises(NodeEnvironmentError, match=rf"cannot start on executor 0 on 127\.0\.0\.1: orca: unpacking "
                           rf"{archive} into {envs} on \S+ failed: no space left \(.* MiB free\); nothing was kept"):
            init_orca_context(cluster_mode="standalone", master=master, cores=1, memory="1g", num_nodes=1,
                              penv_archive=archive, node_env_cache=str(envs))
        assert state.running is None
    finally:
        cluster.stop()
    assert sorted(p.name for p in envs.iterdir() if not p.name.endswith(".lock")) == []
