"""Fixtures of the shipping tests: a private Orca cache and a small venv."""

import shutil

import pytest
from venvs import make_venv


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ORCA_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("base") / "venv", "termcolor")


@pytest.fixture
def venv(base_venv, tmp_path):
    """A private copy of a small venv with termcolor, for tests that change it."""
    copy = tmp_path / "venv"
    shutil.copytree(base_venv, copy, symlinks=True)
    return copy
