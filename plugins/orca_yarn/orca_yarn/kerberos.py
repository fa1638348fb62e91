"""Kerberos: a ticket from the keytab, so WebHDFS and the ResourceManager accept this process."""

from __future__ import annotations

import os
import shutil
import subprocess

from orca_core.errors import ConfigError, LaunchError


def check(principal: str | None, keytab: str | None) -> str | None:
    """Validate the pair; the keytab's absolute path (or None without Kerberos)."""
    if bool(principal) != bool(keytab):
        given, missing = ("principal", "keytab") if principal else ("keytab", "principal")
        raise ConfigError(f"Kerberos needs both principal and keytab: {given} was given, pass {missing}=... too")
    if not keytab:
        return None
    path = os.path.abspath(os.path.expanduser(keytab))
    if not os.path.isfile(path):
        raise ConfigError(f"keytab={keytab!r} is not a file: pass the path of the keytab of {principal}")
    return path


def login(principal: str, keytab: str, timeout: float = 30.0) -> None:
    """`kinit -kt keytab principal` into the default ticket cache."""
    kinit = shutil.which("kinit")
    if kinit is None:
        raise ConfigError("principal/keytab need the Kerberos client tools: install krb5-user (kinit)")
    try:
        done = subprocess.run([kinit, "-kt", keytab, principal], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as error:
        raise LaunchError(f"kinit for {principal} did not finish within {timeout:.0f}s: is the KDC reachable?") from error
    if done.returncode != 0:
        raise LaunchError(f"kinit -kt {keytab} {principal} failed: {(done.stderr or done.stdout).strip()}")
