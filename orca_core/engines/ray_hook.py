"""The `RAY_START_HOOK` of every Ray head Orca starts.

Orca connects drivers straight to the GCS, so the Ray Client server that `ray start --head`
always adds (one more Python process) is left out unless the user asked for its port. A hook
the user set in `RAY_START_HOOK` runs after this one (Orca passes it on as `ORCA_NEXT_RAY_START_HOOK`).
"""

from __future__ import annotations

import importlib
import os
import sys

NEXT = "ORCA_NEXT_RAY_START_HOOK"


def tune(ray_params, head: bool) -> None:
    """Called by `ray start` with its `RayParams` before any process starts."""
    if not any(arg.startswith("--ray-client-server-port") for arg in sys.argv):
        ray_params.ray_client_server_port = None
    user = os.environ.get(NEXT)
    if user:
        module, _, name = user.rpartition(".")
        getattr(importlib.import_module(module), name)(ray_params, head)


def env(base: dict[str, str]) -> dict[str, str]:
    """The variables that install this hook in front of the one `base` may already name."""
    patch = {"RAY_START_HOOK": f"{__name__}.tune"}
    if base.get("RAY_START_HOOK") and base["RAY_START_HOOK"] != patch["RAY_START_HOOK"]:
        patch[NEXT] = base["RAY_START_HOOK"]
    return patch
