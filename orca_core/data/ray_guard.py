"""The Ray Data execution callback that refuses Datasets of a stopped Orca context.

`spark_to_ray` puts it into its Dataset's `DataContext`, which Datasets derived from it copy, so
any execution of them on the driver checks first (when planned, and when it starts) that the context whose blocks they read runs.
"""

from __future__ import annotations

from ray.data._internal.execution.execution_callback import ExecutionCallback

from orca_core.data import sessions


class ContextGuard(ExecutionCallback):
    def __init__(self) -> None:
        """Made while Ray Data plans an execution: before it touches Ray, refuse when no context runs."""
        if sessions.MADE_HERE and sessions.live_session() is None:  # Ray's own workers plan executions too
            raise sessions.ExchangeError(sessions.stale_message())

    def before_execution_starts(self, executor) -> None:
        sessions.check(executor._data_context)
