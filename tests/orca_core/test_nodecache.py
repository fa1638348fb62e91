"""The nodes' cache of unpacked environments, driven as Spark drives it: the launcher run as the
executors' Python, with the settings Spark gives executors in their environment."""

import json
import os
import resource
import subprocess
import sys
import tarfile

import pytest

from orca_core.cli import main as orca
from orca_core.shipping import nodecache
from orca_core.spark_cluster import write_launcher

PREFIX = "import sys; print(sys.prefix)"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A real venv (no pip) packed as tar.gz, with a 2 MiB file in it."""
    root = tmp_path_factory.mktemp("env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    (root / "venv" / "payload.bin").write_bytes(os.urandom(2 << 20))
    path = root / "env.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in os.listdir(root / "venv"):
            tar.add(root / "venv" / name, arcname=name)
    return path


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "node-envs"


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return str(write_launcher(shared=True))


def _env(cache, archive, key="k1", **extra):
    return {**os.environ, "ORCA_ENV_KEY": key, "ORCA_ENV_ARCHIVE": str(archive), "ORCA_NODE_ENVS": str(cache),
            "ORCA_ENV_PYTHON": "bin/python", **extra}


def _launch(launcher, env, code=PREFIX, **kwargs):
    return subprocess.run([launcher, "-c", code], env=env, capture_output=True, text=True, timeout=120, **kwargs)


def _leftovers(cache):
    return sorted(n for n in os.listdir(cache) if n.endswith(".tmp"))


def test_first_launch_unpacks_once_and_later_ones_reuse_it(launcher, archive, cache):
    first = _launch(launcher, _env(cache, archive))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(cache / "k1")
    marker = cache / "k1" / nodecache.MARKER
    record, inode = json.loads(marker.read_text()), os.stat(cache / "k1").st_ino
    assert record["key"] == "k1" and record["bytes"] >= 2 << 20
    assert os.stat(cache).st_mode & 0o777 == 0o700
    second = _launch(launcher, _env(cache, archive))
    assert second.stdout.strip() == str(cache / "k1")
    assert json.loads(marker.read_text()) == record and os.stat(cache / "k1").st_ino == inode
    assert _leftovers(cache) == []


def test_concurrent_first_launches_wait_for_one_unpack(launcher, archive, cache):
    procs = [subprocess.Popen([launcher, "-c", PREFIX], env=_env(cache, archive), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outs]
    assert {out.strip() for out, _ in outs} == {str(cache / "k1")}
    assert json.loads((cache / "k1" / nodecache.MARKER).read_text())["pid"] in {p.pid for p in procs}
    assert _leftovers(cache) == []


def test_two_environments_on_one_host_at_once(launcher, archive, cache):
    procs = {key: subprocess.Popen([launcher, "-c", PREFIX], env=_env(cache, archive, key), stdout=subprocess.PIPE,
                                   text=True) for key in ("a", "b")}
    assert {key: p.communicate(timeout=120)[0].strip() for key, p in procs.items()} == {
        "a": str(cache / "a"), "b": str(cache / "b")}


def test_an_interrupted_unpack_is_redone_never_used(launcher, archive, cache):
    cache.mkdir(mode=0o700)
    (cache / ".k1.abc.tmp" / "bin").mkdir(parents=True)  # what a killed unpack leaves
    (cache / "k1" / "bin").mkdir(parents=True)  # a folder without its completion marker
    (cache / "k1" / "bin" / "python").write_text("not an interpreter")
    done = _launch(launcher, _env(cache, archive))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(cache / "k1")
    assert (cache / "k1" / nodecache.MARKER).exists() and _leftovers(cache) == []


@pytest.fixture(params=["isal", "zlib"])
def inflater(request, tmp_path):
    """The launcher's environment for each way it inflates: ISA-L (installed here), or zlib (`isal` unimportable)."""
    if request.param == "isal":
        return {}
    shadow = tmp_path / "no-isal"
    (shadow / "isal").mkdir(parents=True)
    (shadow / "isal" / "__init__.py").write_text("raise ImportError('no ISA-L on this node')")
    return {"PYTHONPATH": str(shadow)}


def test_either_inflater_unpacks_a_whole_archive_and_refuses_a_damaged_one(launcher, archive, cache, tmp_path,
                                                                          inflater):
    data = archive.read_bytes()
    middle = len(data) // 2
    for name, damaged, said in (("truncated", data[:middle], "the archive ends early"),
                                ("corrupted", data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 4096])
                                 + data[middle + 4096:], "unpacking")):
        broken = tmp_path / f"{name}.tar.gz"
        broken.write_bytes(damaged)
        done = _launch(launcher, _env(cache, broken, **inflater))
        assert done.returncode == 1, name
        assert said in done.stderr and str(broken) in done.stderr, done.stderr
        assert not (cache / "k1").exists() and _leftovers(cache) == []
    done = _launch(launcher, _env(cache, archive, **inflater))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(cache / "k1")
    assert (cache / "k1" / "payload.bin").stat().st_size == 2 << 20


def test_the_file_size_limit_is_a_clear_error_and_nothing_is_kept(launcher, archive, cache):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    done = _launch(launcher, _env(cache, archive), preexec_fn=limit)
    assert done.returncode == 1
    assert "file size limit reached" in done.stderr and "nothing was kept" in done.stderr
    assert not (cache / "k1").exists() and _leftovers(cache) == []


def test_an_archive_missing_on_the_node_is_named(launcher, cache, tmp_path):
    done = _launch(launcher, _env(cache, tmp_path / "gone.tar.gz"))
    assert done.returncode == 1
    assert "gone.tar.gz is not on" in done.stderr and "not shipped" in done.stderr


def test_a_cache_that_cannot_be_written_is_named(launcher, archive, tmp_path):
    (tmp_path / "file").write_text("")
    done = _launch(launcher, _env(tmp_path / "file" / "envs", archive))
    assert done.returncode == 1
    assert "cannot use the environment cache" in done.stderr and "node_env_cache" in done.stderr


def test_a_cache_folder_of_another_user_is_refused(launcher, archive, tmp_path):
    other = tmp_path / "theirs"
    other.mkdir()
    os.chown(other, 65534, 65534)
    done = _launch(launcher, _env(other, archive))
    assert done.returncode == 1 and "is not a folder of this user" in done.stderr


def test_least_recently_used_idle_environments_go_beyond_the_cap(launcher, archive, cache):
    for key in ("old", "busy", "new"):
        assert _launch(launcher, _env(cache, archive, key)).returncode == 0
    os.utime(cache / "busy" / nodecache.MARKER, (1, 1))  # the least recently used, but held
    os.utime(cache / "old" / nodecache.MARKER, (2, 2))
    holder = subprocess.Popen([launcher, "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
                              env=_env(cache, archive, "busy"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "up\n"
        size = json.loads((cache / "new" / nodecache.MARKER).read_text())["bytes"]
        done = _launch(launcher, _env(cache, archive, "latest", ORCA_NODE_ENVS_MAX=str(3 * size + size // 2)))
        assert done.returncode == 0, done.stderr
        left = {r["key"]: r["in_use"] for r in nodecache.entries(str(cache))}
        assert left == {"busy": True, "new": False, "latest": False}  # "old" went; "busy" is held
    finally:
        holder.communicate("", timeout=30)
    assert {r["key"]: r["in_use"] for r in nodecache.entries(str(cache))}["busy"] is False


def test_orca_envs_lists_and_clears_idle_environments(launcher, archive, cache, capsys):
    for key in ("a", "b"):
        assert _launch(launcher, _env(cache, archive, key)).returncode == 0
    assert orca(["envs", "list", "--cache", str(cache), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["key"] for e in listed["environments"]] == ["a", "b"]
    assert orca(["envs", "clear", "a", "--cache", str(cache)]) == 0
    assert [e["key"] for e in nodecache.entries(str(cache))] == ["b"]
    assert orca(["envs", "clear", "nope", "--cache", str(cache)]) == 2
    assert "no environment nope" in capsys.readouterr().err
    assert orca(["envs", "clear", "--cache", str(cache)]) == 0
    assert nodecache.entries(str(cache)) == [] and _leftovers(cache) == []


def test_a_node_without_the_archive_fetches_it_from_the_driver_with_the_token(launcher, archive, cache, tmp_path):
    from orca_core.shipping.serve import ArchiveServer

    server = ArchiveServer("127.0.0.1", {"env.tar.gz": str(archive)})
    try:
        elsewhere = tmp_path / "on-the-driver" / "env.tar.gz"  # not on this "node"
        wrong = _launch(launcher, _env(cache, elsewhere, ORCA_ENV_URL=server.url, ORCA_ENV_TOKEN="guess"))
        assert wrong.returncode == 1 and "could not fetch the environment archive" in wrong.stderr
        assert "only serves the executors of its Orca context" in wrong.stderr and not (cache / "k1").exists() and _leftovers(cache) == []
        done = _launch(launcher, _env(cache, elsewhere, ORCA_ENV_URL=server.url, ORCA_ENV_TOKEN=server.token))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(cache / "k1") and _leftovers(cache) == []
    finally:
        server.close()
    gone = _launch(launcher, _env(cache, elsewhere, "k2", ORCA_ENV_URL=server.url, ORCA_ENV_TOKEN=server.token))
    assert gone.returncode == 1 and "could not fetch" in gone.stderr and _leftovers(cache) == []
