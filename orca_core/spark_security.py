"""Spark's shared-secret authentication (and optional encryption) for the clusters Orca starts.

On YARN and Kubernetes Spark makes and distributes its own secret: `orca_core.spark_cluster`
plans only `auth_conf` there.

A plan says `spark.authenticate=true`; the secret itself is made per context at start
(`with_secret`), so `orca plan` never shows one. It reaches the driver's SparkContext over py4j
(never the JVM's command line: `public` is what goes there), the standalone daemons Orca starts
through their environment (`DAEMON_ENV`), and the executors through their worker, which hands
them the same variable. Spark's RPC and block transfers then refuse whoever lacks the secret.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import replace

from orca_core.plan import LaunchPlan
from orca_core.records import Option

AUTHENTICATE = "spark.authenticate"
SECRET = "spark.authenticate.secret"
DAEMON_ENV = "_SPARK_AUTH_SECRET"  # where Spark's master, workers and executors read the secret
SENSITIVE = re.compile(r"(?i)secret|password|token|access[.]?key")  # Spark's spark.redaction.regex default
ENCRYPTION = {"spark.network.crypto.enabled": "true", "spark.io.encryption.enabled": "true"}

ENCRYPTION_OPTION = Option(
    "spark_encryption", bool, False,
    help="encrypt Spark's RPC and block transfers (spark.network.crypto.enabled) and its shuffle and spill "
         "files (spark.io.encryption.enabled), with spark.authenticate: on the cluster Orca starts, or on YARN "
         "and Kubernetes, whose cluster manager distributes Spark's secret",
)


def auth_conf(encrypt: bool) -> dict[str, str]:
    """The conf of an application on a cluster Orca starts: authenticated, encrypted if asked."""
    return {AUTHENTICATE: "true", **(ENCRYPTION if encrypt else {})}


def authenticated(conf: dict[str, str]) -> bool:
    return conf.get(AUTHENTICATE, "false").strip().lower() == "true"


def with_secret(plan: LaunchPlan) -> LaunchPlan:
    """`plan` with a new secret in its conf if it authenticates and the user's conf brought none."""
    if not authenticated(plan.spark_conf) or plan.spark_conf.get(SECRET):
        return plan
    return replace(plan, spark_conf={**plan.spark_conf, SECRET: secrets.token_hex(32)})


def is_sensitive(key: str) -> bool:
    return bool(SENSITIVE.search(key))


def public(conf: dict[str, str]) -> dict[str, str]:
    """`conf` without the entries that hold secrets: what may appear on a command line."""
    return {k: v for k, v in conf.items() if not is_sensitive(k)}


def write_properties(path: str, conf: dict[str, str]) -> str:
    """Write `conf` as a Java properties file private to the user (0600, never through a link)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for key, value in sorted(conf.items()):
            f.write(f"{_escape(key, True)}={_escape(value, False)}\n")
    return path


def _escape(text: str, key: bool) -> str:
    """Java properties escaping: backslash, line breaks, and in keys the separators."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if key:
        out = out.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ")
    elif out.startswith(" "):
        out = "\\" + out
    return out
