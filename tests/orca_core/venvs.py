"""Throwaway venvs for the shipping tests, built by uv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def uv() -> str:
    found = shutil.which("uv") or os.path.join(sys.prefix, "bin", "uv")
    if not os.path.exists(found):
        raise RuntimeError("these tests build throwaway venvs with uv: pip install uv (tests/requirements.txt)")
    return found


def make_venv(path: Path, *packages: str) -> Path:
    """A throwaway venv (no pip) with `packages` installed by uv."""
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(path)], check=True)
    if packages:
        install(path, *packages)
    return path


def install(venv: Path, *packages: str) -> None:
    subprocess.run([uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *packages],
                   check=True, capture_output=True)
