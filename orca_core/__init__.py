"""Orca: one call brings up Spark and Ray for a Python program, wherever it must run.

    from orca_core import init_orca_context, stop_orca_context, OrcaContext

    sc = init_orca_context(cluster_mode="local", cores=2, init_ray_on_spark=True)
    ...
    stop_orca_context()
"""

import pluggy

hookimpl = pluggy.HookimplMarker("orca")
"""The marker of every Orca hook implementation: `@hookimpl def orca_cluster_modes(): ...`"""

from orca_core.context import init_orca_context, plan_orca_context, stop_orca_context  # noqa: E402
from orca_core.errors import OrcaError  # noqa: E402
from orca_core.settings import OrcaContext  # noqa: E402

__all__ = [
    "OrcaContext",
    "OrcaError",
    "hookimpl",
    "init_orca_context",
    "plan_orca_context",
    "stop_orca_context",
]
