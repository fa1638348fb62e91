"""The running context of this process.

`orca_core.context` starts and stops contexts; everything else that needs to know what runs
(settings, data, hooks) reads it here, so nothing imports the module that starts it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from orca_core.backend import ClusterBackend, Request
from orca_core.environ import EnvPatch
from orca_core.errors import EngineDied, NotRunning
from orca_core.plan import LaunchPlan

lock = threading.RLock()
running: RunningContext | None = None  # set and cleared by orca_core.context under `lock`
deaths: list[str] = []  # what died under the running (or starting) context; cleared when it stops
told = False  # whether an Orca call has raised the first of `deaths`
RESTART = "call stop_orca_context() (it stops what is left), then init_orca_context()"


def current() -> RunningContext | None:
    """The running context of this process, or None; `EngineDied` if a process of it died."""
    check()
    return running


def died(message: str, fix: str = RESTART) -> None:
    """Record that a process of the context died: the next Orca call raises `EngineDied`, saying `fix`."""
    deaths.append(f"{message}: {fix}")


def check() -> None:
    """Raise `EngineDied` if a process of the running context died."""
    global told
    if deaths:
        told = True
        raise EngineDied(deaths[0])


def forget() -> None:
    """Forget the deaths of a context that stopped (or that a forked child does not own)."""
    global told
    deaths.clear()
    told = False


@dataclass
class RunningContext:
    """A started context: its request, plan, backend and engine handles."""

    request: Request
    plan: LaunchPlan
    backend: ClusterBackend
    spark: Any = None
    ray: Any = None
    ray_context: Any = None
    env: EnvPatch = field(default_factory=EnvPatch)

    @property
    def spark_context(self):
        if self.spark is None:
            raise NotRunning(f'this context runs no Spark (runtime="{self.request.runtime}")')
        return self.spark.spark_context

    @property
    def spark_session(self):
        if self.spark is None:
            raise NotRunning(f'this context runs no Spark (runtime="{self.request.runtime}")')
        return self.spark.spark_session

    @property
    def spark_ui_url(self) -> str | None:
        return self.spark.spark_context.uiWebUrl if self.spark else None

    def get_ray_context(self):
        if self.ray_context is None:
            raise NotRunning("this context runs no Ray: pass init_ray_on_spark=True to init_orca_context()")
        return self.ray_context

    def __repr__(self) -> str:
        ray = self.ray_context.dashboard_url if self.ray_context else None
        return (
            f"<OrcaContext {self.request.cluster_mode} master={self.plan.master} "
            f"spark_ui={self.spark_ui_url} ray_dashboard={ray}>"
        )

    def _repr_html_(self) -> str:
        rows = [f"<b>Orca</b> {self.request.cluster_mode}, master {self.plan.master}"]
        if self.spark_ui_url:
            rows.append(f'Spark UI: <a href="{self.spark_ui_url}">{self.spark_ui_url}</a>')
        if self.ray_context and self.ray_context.dashboard_url:
            url = self.ray_context.dashboard_url
            rows.append(f'Ray dashboard: <a href="{url}">{url}</a>')
        return "<br>".join(rows)
