"""Fixtures of the fault-injection suite: a private cache, small or read-only file systems, a driver's TMPDIR."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ORCA_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def mount(tmp_path):
    """mount(folder, options): a tmpfs at `folder` (e.g. "size=2m", "ro"), unmounted after the test."""
    mounted = []

    def make(folder: Path, options: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=0700,{options}", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode:
            pytest.fail(f"these tests mount a tmpfs (they run as root): {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def big_venv(tmp_path):
    """A venv (no pip) holding 6 MiB of incompressible data in site-packages."""
    path = tmp_path / "venv"
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(path)], check=True)
    site = next(path.glob("lib/python*/site-packages"))
    (site / "blob.bin").write_bytes(os.urandom(6 << 20))
    return path



@pytest.fixture
def short_tmp():
    """A short, private TMPDIR for a driver (Ray's socket paths must stay under 108 bytes): everything a context
    writes goes there, so a test sees what it left."""
    folder = tempfile.mkdtemp(prefix="of-", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
