"""On a node: check that an unpacked environment can run before Spark or Ray relies on it.

venv-pack archives do not contain Python: `bin/python` links to the base interpreter the venv was
made from, at its absolute path, which every node must have. conda-pack archives carry their own.
Only the standard library is used, so any Python on the node can run the check.
"""

from __future__ import annotations

import os
import socket

from orca_core.errors import LaunchError


def _home(root: str) -> str | None:
    try:
        with open(os.path.join(root, "pyvenv.cfg")) as f:
            for line in f:
                key, sep, value = line.partition("=")
                if sep and key.strip().lower() == "home":
                    return value.strip()
    except OSError:
        pass
    return None


def check_unpacked(root: str = "python_env", python: str = "bin/python", base_interpreter: str | None = None,
                   python_version: str = "") -> str:
    """The interpreter of the environment unpacked at `root`; a LaunchError saying what is missing otherwise.

    `base_interpreter` and `python_version` are what `PackedEnv` recorded at pack time.
    """
    exe = os.path.join(root, python)
    if os.path.isfile(exe) and os.access(exe, os.X_OK):
        return exe
    if not os.path.lexists(exe):
        raise LaunchError(
            f"the Python environment unpacked at {os.path.abspath(root)} on {socket.gethostname()} has no "
            f"{python}: the archive is not laid out as Spark's `#python_env` expects (bin/python at its root)"
        )
    base = base_interpreter or (os.readlink(exe) if os.path.islink(exe) else None) or _home(root)
    version = f"Python {python_version}" if python_version else "the same Python"
    raise LaunchError(
        f"the Python environment unpacked at {os.path.abspath(root)} on {socket.gethostname()} cannot run: "
        f"{python} links to the base interpreter {base}, which does not exist on this node. venv-pack "
        f"archives do not contain Python: install {version} at {base} on every node, or ship a conda "
        "environment (conda-pack archives carry their Python), or pass penv_archive= an archive that does"
    )
