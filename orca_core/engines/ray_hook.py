"""The `RAY_START_HOOK` of every `ray start` Orca runs.

Orca connects drivers straight to the GCS, so the Ray Client server that `ray start --head`
always adds (one more Python process) is left out unless the user asked for its port.
"""

from __future__ import annotations

import sys


def tune(ray_params, head: bool) -> None:
    """Called by `ray start` with its `RayParams` before any process starts."""
    if not any(arg.startswith("--ray-client-server-port") for arg in sys.argv):
        ray_params.ray_client_server_port = None
