"""The base class of every cluster-mode backend, and the request it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orca_core.plan import LaunchPlan
from orca_core.resources import Resources


@dataclass(frozen=True)
class Request:
    """A validated `init_orca_context` call."""

    cluster_mode: str
    resources: Resources
    init_ray_on_spark: bool = False
    runtime: str = "spark"
    py_files: tuple[str, ...] = ()
    conf: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    app_name: str = "orca"


class ClusterBackend:
    """Runs one cluster mode.

    Orca builds the backend of the selected mode from a validated `Request`, asks it for a
    `LaunchPlan` (pure data, no side effects), then calls `start(plan)` to bring up whatever
    the engines need (daemons, uploads), starts Spark and Ray from the plan, and calls
    `stop()` after the engines have stopped. `stop()` must be idempotent.
    """

    def __init__(self, request: Request):
        self.request = request

    @property
    def options(self) -> dict[str, Any]:
        return self.request.options

    def plan(self) -> LaunchPlan:
        raise NotImplementedError

    def start(self, plan: LaunchPlan) -> None:
        """Bring up what the plan needs before the engines start; nothing by default."""

    def stop(self) -> None:
        """Release what `start` brought up; nothing by default."""
