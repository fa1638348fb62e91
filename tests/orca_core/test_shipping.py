"""Packing the Python environment once per content hash: keys, the cache, concurrency, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from venvs import install, make_venv

from orca_core.errors import ConfigError, ConfigTypeError, LaunchError
from orca_core.shipping import environment_key, pack_environment


def members(path: str) -> dict[str, tarfile.TarInfo]:
    """Every member of a tar.gz, read to the end (a torn or corrupt archive raises)."""
    with tarfile.open(path, "r:gz") as tar:
        infos = {}
        for info in tar:
            if info.isreg():
                tar.extractfile(info).read()
            infos[info.name] = info
        return infos


def test_second_pack_of_an_unchanged_env_is_a_cache_hit(base_venv, cache):
    calls = []
    first = pack_environment(prefix=base_venv, progress=lambda done, total: calls.append((done, total)))
    assert not first.cached and first.packer == "venv" and first.format == "tar.gz"
    assert calls and calls[-1][0] == calls[-1][1] > 0
    stat = os.stat(first.path)
    calls.clear()
    second = pack_environment(prefix=base_venv, progress=lambda done, total: calls.append((done, total)))
    assert second.cached and second.path == first.path and second.key == first.key
    assert calls == []
    after = os.stat(second.path)
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert environment_key(prefix=base_venv) == ("venv", first.key)


def test_archive_is_private_and_laid_out_for_python_env(base_venv, cache):
    packed = pack_environment(prefix=base_venv, progress=False)
    assert os.stat(packed.path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(packed.path)).st_mode & 0o777 == 0o700
    assert packed.size == os.path.getsize(packed.path)
    names = members(packed.path)
    assert names["bin/python"].issym() and "pyvenv.cfg" in names
    assert "lib/python3.11/site-packages/termcolor/__init__.py" in names
    assert packed.python == "bin/python"
    assert packed.base_interpreter == os.path.realpath(base_venv / "bin" / "python")
    assert packed.python_version == ".".join(map(str, sys.version_info[:3]))
    assert not [n for n in os.listdir(cache / "envs") if n.endswith((".tmp", ".tmp.json"))]


def test_installing_a_package_changes_the_key_and_importing_does_not(venv, cache):
    before = environment_key(prefix=venv)
    subprocess.run([str(venv / "bin" / "python"), "-c", "import termcolor"], check=True)
    assert environment_key(prefix=venv) == before, "byte-compiling on import must not change the key"
    install(venv, "tabulate")
    after = environment_key(prefix=venv)
    assert after[0] == "venv" and after[1] != before[1]
    packed = pack_environment(prefix=venv, progress=False)
    assert packed.key == after[1]
    assert "lib/python3.11/site-packages/tabulate/__init__.py" in members(packed.path)


def test_options_change_the_key_and_spark_jars_are_left_out_unless_kept(venv, cache):
    jars = venv / "lib" / "python3.11" / "site-packages" / "pyspark" / "jars"
    jars.mkdir(parents=True)
    (jars / "spark-core.jar").write_bytes(b"PK" + os.urandom(1000))
    (jars.parent / "__init__.py").write_text("")
    keys = {environment_key(prefix=venv, keep_spark_jars=k, compress=c)[1] for k in (True, False) for c in (True, False)}
    assert len(keys) == 4
    lean = members(pack_environment(prefix=venv, progress=False).path)
    assert "lib/python3.11/site-packages/pyspark/__init__.py" in lean
    assert not [n for n in lean if "/pyspark/jars" in n]
    kept = members(pack_environment(prefix=venv, keep_spark_jars=True, progress=False).path)
    assert "lib/python3.11/site-packages/pyspark/jars/spark-core.jar" in kept
    stored = pack_environment(prefix=venv, compress=False, progress=False)
    assert stored.format == "tar.gz" and set(members(stored.path)) == set(lean)


def test_what_spark_writes_in_its_home_is_never_packed(venv, cache):
    home = venv / "lib" / "python3.11" / "site-packages" / "pyspark"
    (home / "work" / "app-20260101000000-0000" / "0").mkdir(parents=True)
    (home / "work" / "app-20260101000000-0000" / "0" / "stderr").write_text("an executor's log")
    (home / "logs").mkdir()
    (home / "logs" / "spark-master.out").write_text("a daemon's log")
    (home / "__init__.py").write_text("")
    for kept in (False, True):
        for layered in (False, True):
            packed = pack_environment(prefix=venv, keep_spark_jars=kept, layered=layered, progress=False)
            names = [n for p in (packed.layers or (packed.path,)) for n in members(p)]
            assert "lib/python3.11/site-packages/pyspark/__init__.py" in names
            assert not [n for n in names if "/pyspark/work" in n or "/pyspark/logs" in n], names


def test_editable_install_ships_its_sources_and_edits_change_the_key(venv, cache, tmp_path):
    project = tmp_path / "project"
    (project / "edpkg").mkdir(parents=True)
    (project / "edpkg" / "__init__.py").write_text("VALUE = 1\n")
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [project]
        name = "edpkg"
        version = "0.1"
    """))
    install(venv, "-e", str(project))
    before = environment_key(prefix=venv)
    packed = pack_environment(prefix=venv, progress=False)
    with tarfile.open(packed.path) as tar:
        source = tar.extractfile("lib/python3.11/site-packages/edpkg/__init__.py").read()
        pths = {n: tar.extractfile(n).read() for n in tar.getnames() if n.endswith(".pth")}
    assert source == b"VALUE = 1\n"
    assert not [n for n, text in pths.items() if str(project).encode() in text], "editable hooks must not ship"
    (project / "edpkg" / "__init__.py").write_text("VALUE = 2\n")
    assert environment_key(prefix=venv) != before


def test_unpacked_venv_runs_and_a_missing_base_interpreter_is_a_clear_error(base_venv, cache, tmp_path):
    packed = pack_environment(prefix=base_venv, progress=False)
    root = tmp_path / "python_env"
    with tarfile.open(packed.path) as tar:
        tar.extractall(root, filter="fully_trusted")
    python = packed.check_unpacked(str(root))
    out = subprocess.run([python, "-c", "import sys, termcolor; print(sys.prefix); print(termcolor.__file__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == str(root) and out[1].startswith(str(root))
    (root / "bin" / "python3.11").unlink()
    os.symlink("/nonexistent/python/bin/python3.11", root / "bin" / "python3.11")
    with pytest.raises(LaunchError, match=r"base interpreter .*python3\.11.* does not exist on this node"):
        packed.check_unpacked(str(root))


def test_two_processes_packing_one_env_pack_once(base_venv, cache, tmp_path):
    go = tmp_path / "go"
    child = textwrap.dedent(f"""
        import json, os, time
        from orca_core.ports import wait_for
        from orca_core.shipping import pack_environment
        wait_for(lambda: os.path.exists({str(go)!r}), timeout=60, what="the start signal")
        packed = pack_environment(prefix={str(base_venv)!r}, progress=False)
        print(json.dumps({{"path": packed.path, "cached": packed.cached}}))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["path"] == results[1]["path"]
    assert sorted(r["cached"] for r in results) == [False, True], "exactly one process packs"
    assert "bin/python" in members(results[0]["path"])
    archives = [n for n in os.listdir(cache / "envs") if n.endswith(".tar.gz")]
    assert archives == [os.path.basename(results[0]["path"])]
    assert not [n for n in os.listdir(cache / "envs") if ".tmp" in n]


def test_penv_archive_ships_as_is(base_venv, cache, tmp_path):
    archive = tmp_path / "env.tgz"
    shutil.copyfile(pack_environment(prefix=base_venv, progress=False).path, archive)
    packed = pack_environment(penv_archive=str(archive))
    assert (packed.path, packed.packer, packed.format, packed.cached) == (str(archive), "archive", "tar.gz", True)
    assert environment_key(penv_archive=str(archive)) == ("archive", packed.key)
    os.utime(archive, ns=(1, 1))
    assert environment_key(penv_archive=str(archive))[1] != packed.key


@pytest.mark.parametrize("content, name, match", [
    (None, "missing.tar.gz", "does not exist"),
    (b"not an archive", "env.tar.gz", "not a valid tar.gz archive"),
    (b"not an archive", "env.zip", "not a valid zip archive"),
    (b"PK", "env.txt", r"not a \.tar\.gz, \.tgz, \.tar or \.zip"),
])
def test_bad_penv_archive_is_a_clear_error_before_anything(tmp_path, monkeypatch, content, name, match):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ORCA_CACHE_DIR", str(cache))
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        pack_environment(penv_archive=str(path))
    with pytest.raises(ConfigError, match=match):
        environment_key(penv_archive=str(path))
    assert not cache.exists()


def test_bad_options_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CONDA_ENVS_PATH", str(tmp_path / "envs"))
    with pytest.raises(ConfigError, match=r'conda environment "nope" does not exist.*conda create -n nope'):
        pack_environment(conda_name="nope")
    with pytest.raises(ConfigError, match="not both"):
        pack_environment(conda_name="x", penv_archive="y.tar.gz")
    with pytest.raises(ConfigTypeError, match="keep_spark_jars must be True or False"):
        pack_environment(keep_spark_jars="yes")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="neither a virtualenv/venv nor a conda environment"):
        pack_environment(prefix=plain)
    assert not (tmp_path / "cache").exists()


def _conda_record(prefix: Path, pkgs: Path, name: str, version: str, files: list[str]) -> None:
    """Register `files` (prefix-relative) as conda package name-version, with its package cache entry."""
    dist = f"{name}-{version}-0"
    cached = pkgs / dist
    paths = []
    for rel in files:
        source, target = prefix / rel, cached / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
            paths.append({"_path": rel, "path_type": "softlink"})
        else:
            shutil.copy2(source, target)
            paths.append({"_path": rel, "path_type": "hardlink", "size_in_bytes": source.stat().st_size})
    (cached / "info").mkdir(parents=True, exist_ok=True)
    (cached / "info" / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    (cached / "info" / "index.json").write_text(json.dumps({"name": name, "version": version, "build": "0"}))
    record = {"name": name, "version": version, "build": "0", "build_number": 0, "channel": "local",
              "url": f"file://{pkgs}/{dist}.conda", "files": files, "link": {"source": str(cached), "type": 1}}
    (prefix / "conda-meta").mkdir(exist_ok=True)
    (prefix / "conda-meta" / f"{dist}.json").write_text(json.dumps(record))


@pytest.fixture
def conda_env(tmp_path, monkeypatch):
    """A conda-layout env (conda-meta records and a package cache) built from a venv with termcolor."""
    root = tmp_path / "conda"
    prefix = make_venv(root / "envs" / "tiny", "termcolor")
    site = prefix / "lib" / "python3.11" / "site-packages"
    info = next(site.glob("termcolor-*.dist-info"))
    owned = [os.path.normpath(os.path.relpath(site / line.split(",")[0], prefix))
             for line in (info / "RECORD").read_text().splitlines() if line]
    _conda_record(prefix, root / "pkgs", "termcolor", info.name.split("-")[1].removesuffix(".dist"), owned)
    rest = [str(p.relative_to(prefix)) for p in prefix.rglob("*")
            if (p.is_file() or p.is_symlink()) and "conda-meta" not in p.parts
            and str(p.relative_to(prefix)) not in owned and "__pycache__" not in p.parts]
    _conda_record(prefix, root / "pkgs", "python", "3.11.7", rest)
    monkeypatch.setenv("CONDA_ENVS_PATH", str(root / "envs"))
    return prefix


def test_conda_env_is_packed_with_conda_pack_by_name(conda_env, cache, tmp_path):
    assert environment_key(conda_name="tiny")[0] == "conda"
    packed = pack_environment(conda_name="tiny", progress=False)
    assert (packed.packer, packed.format, packed.python, packed.python_version) == ("conda", "tar.gz", "bin/python",
                                                                                   "3.11.7")
    names = members(packed.path)
    assert {"bin/conda-unpack", "conda-meta/python-3.11.7-0.json", "bin/python"} <= set(names)
    assert "lib/python3.11/site-packages/termcolor/__init__.py" in names
    assert pack_environment(prefix=conda_env, progress=False).path == packed.path, "detected from conda-meta/"
    root = tmp_path / "python_env"
    with tarfile.open(packed.path) as tar:
        tar.extractall(root, filter="fully_trusted")
    out = subprocess.run([str(root / packed.python), "-c", "import termcolor; print(termcolor.__file__)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(str(root))
    install(conda_env, "tabulate")
    assert environment_key(conda_name="tiny")[1] != packed.key


PEX_PLUGIN = """
import os
from orca_core import hookimpl
from orca_core.records import EnvPacker
from orca_core.shipping.packer import Packer

class FakePex(Packer):
    format = "zip"
    python = "env.pex"

    @classmethod
    def detect(cls, request):
        return os.path.exists(os.path.join(request.prefix, "env.pex"))

    def fingerprint(self, digest):
        digest.update(open(os.path.join(self.prefix, "env.pex"), "rb").read())

    def pack(self, path, progress):
        import shutil
        shutil.copyfile(os.path.join(self.prefix, "env.pex"), path)

@hookimpl
def orca_env_packers():
    yield EnvPacker("pex", FakePex, "a pex file", priority=60)
"""


def test_a_third_party_packer_is_picked_by_priority(fake_distribution, venv, cache):
    import zipfile

    fake_distribution("orca-pex", {"pex": "pex_packer"}, {"pex_packer.py": PEX_PLUGIN})
    assert environment_key(prefix=venv)[0] == "venv"
    with zipfile.ZipFile(venv / "env.pex", "w") as zf:
        zf.writestr("__main__.py", "print('hi')\n")
    packer, key = environment_key(prefix=venv)
    packed = pack_environment(prefix=venv, progress=False)
    assert (packer, packed.packer, packed.key, packed.format) == ("pex", "pex", key, "zip")
    assert packed.path.endswith(".zip") and zipfile.ZipFile(packed.path).namelist() == ["__main__.py"]
