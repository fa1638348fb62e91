"""Every session: `nox` runs lint, tests, core_only and wheels; `nox -s demo` runs the quickstart."""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests", "core_only", "wheels"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
PLUGINS = sorted(os.path.dirname(p) for p in glob.glob("plugins/*/pyproject.toml"))
TEST_REQUIREMENTS = "tests/requirements.txt"
SLURM_PACKAGES = ["slurm-wlm", "munge"]  # the real Slurm tests/orca_slurm starts (Debian/Ubuntu)


def _find_links() -> list[str]:
    """Local wheel folders pip is configured with (this is where the CPU build of torch lies)."""
    links = os.environ.get("PIP_FIND_LINKS", "").split()
    return [arg for link in links if os.path.isdir(link) for arg in ("--find-links", link)]


def _install(session: nox.Session, *args: str) -> None:
    """Install, compiling bytecode as pip does (uv does not by default): with no .pyc and
    PYTHONDONTWRITEBYTECODE set, every Spark and Ray Python process compiles its imports afresh."""
    session.install(*args, env={"UV_COMPILE_BYTECODE": "1"})


def _editable(session: nox.Session, *paths: str) -> None:
    args = []
    for path in paths:
        args += ["-e", path]
    _install(session, *args)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install orca-core and orca-local, then run examples/quickstart.py on the local default."""
    _editable(session, ".[java]", "plugins/orca_local")
    session.run("python", "examples/quickstart.py")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Every package installed editable; the whole test suite against real Spark and Ray."""
    _editable(session, ".[java]", *PLUGINS)
    _install(session, *_find_links(), "-r", TEST_REQUIREMENTS)
    _install_slurm(session)
    session.run("pytest", *(session.posargs or ["tests", "--ignore=tests/core_only", "--ignore=tests/wheels",
                                                "--durations=25"]))


def _install_slurm(session: nox.Session) -> None:
    """Install Slurm and munge with apt when slurmctld is missing (as root, or through sudo)."""
    if shutil.which("slurmctld") is not None:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run_install(*sudo, "apt-get", "update", "-q", external=True, env=env)
    session.run_install(*sudo, "apt-get", "install", "-y", "-q", *SLURM_PACKAGES, external=True, env=env)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def core_only(session: nox.Session) -> None:
    """Only orca-core installed: importing is cheap and asking for a mode says what to install."""
    session.install(".", "pytest")
    session.run("pytest", "tests/core_only", "-p", "no:cacheprovider")


@nox.session(python=PYTHON)
def wheels(session: nox.Session) -> None:
    """Build wheels, install them (not editable) and check that entry points are discovered."""
    dist = os.path.join(session.create_tmp(), "dist")
    session.install("build")
    for path in [".", *PLUGINS]:
        session.run("python", "-m", "build", "--wheel", "--outdir", dist, path, silent=True)
    session.install(*sorted(glob.glob(os.path.join(dist, "*.whl"))), "pytest")
    session.run("pytest", "tests/wheels", "-p", "no:cacheprovider", env={"ORCA_DIST_DIR": dist})
