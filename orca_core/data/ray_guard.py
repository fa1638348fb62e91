"""The Ray Data execution callback that refuses Datasets of a stopped Orca context.

`spark_to_ray` puts it into its Dataset's `DataContext`, which Datasets derived from it copy, so
any execution of them on the driver checks first (when planned, and when it starts) that the context whose blocks they read runs.
"""

from __future__ import annotations

from ray.data._internal.execution.execution_callback import ExecutionCallback


class ContextGuard(ExecutionCallback):
    def __init__(self) -> None:
        """Made while Ray Data plans an execution: before it touches Ray, refuse when no context runs."""
        from orca_core.data.exchange import MADE_HERE, ExchangeError, live_session, stale_message

        if MADE_HERE and live_session() is None:  # Ray's own workers plan executions too: let them
            raise ExchangeError(stale_message())

    def before_execution_starts(self, executor) -> None:
        from orca_core.data.exchange import MADE_HERE, SESSION_KEY, ExchangeError, live_session, stale_message

        session = executor._data_context.get_config(SESSION_KEY)
        if session in MADE_HERE and session != live_session():
            raise ExchangeError(stale_message())
