"""`orca pack`: pack (or find in the cache) an environment and print its path and key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from orca_core.cli import main


def test_orca_pack_prints_path_and_key_then_hits_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "cache"))
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    assert main(["pack", "--prefix", str(venv), "--json", "--quiet"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["packer"] == "venv" and not first["cached"] and os.path.isfile(first["path"])
    assert first["path"].startswith(str(tmp_path / "cache" / "envs"))
    assert main(["pack", "--prefix", str(venv)]) == 0
    captured = capsys.readouterr()
    path, key_line = captured.out.splitlines()
    assert path == first["path"] and key_line.startswith(f"key {first['key']} (venv") and "cached" in key_line
    assert captured.err == "", "a cache hit packs nothing, so shows no progress"


def test_orca_pack_reports_bad_input_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["pack", "--penv-archive", str(tmp_path / "missing.tar.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("orca: error: penv_archive") and "does not exist" in err
