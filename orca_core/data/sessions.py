"""Which Ray session the Datasets of `spark_to_ray` belong to, and whether it still runs.

Kept apart from `exchange` (and free of Ray imports) so that the Ray Data callback in `ray_guard`
and the exchange itself both read one definition.
"""

from __future__ import annotations

import hashlib

from orca_core.errors import OrcaError

SESSION_KEY = "orca.exchange.session"  # the DataContext config that names a Dataset's session
MADE_HERE: set[str] = set()  # sessions whose Datasets this process (the driver) made


class ExchangeError(OrcaError, RuntimeError):
    """A conversion between Spark and Ray failed, or its data belongs to a stopped context."""


def session_of(token: str) -> str:
    """The session id of a Ray cluster Orca started with `token`."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def live_session() -> str | None:
    """The session id of the running context's Ray, or None."""
    from orca_core.state import current

    context = current()
    owner = context.ray_context._owner if context is not None and context.ray_context is not None else None
    token = getattr(getattr(owner, "head", owner), "token", None)
    return session_of(token) if token else None


def check(data_context) -> None:
    """Refuse to run a Dataset made here whose context has stopped."""
    session = data_context.get_config(SESSION_KEY)
    if session in MADE_HERE and session != live_session():
        raise ExchangeError(stale_message())


def stale_message() -> str:
    return (
        "this Ray Dataset holds data of an Orca context that has stopped (stop_orca_context() ended its "
        "Ray cluster and the blocks with it): init_orca_context() again and convert the data again"
    )
