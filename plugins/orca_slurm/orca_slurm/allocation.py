"""The Slurm allocation Spark runs in: the one this program runs in, or one Orca requests and holds.

A requested allocation is held by `salloc` running a small program that waits, under the
supervisor: when the driver stops it, or dies (even by SIGKILL), salloc gets SIGTERM and
relinquishes the allocation (or withdraws it while pending), which ends every step in it.
"""

from __future__ import annotations

import os
import re
import sys

from orca_core.errors import LaunchError
from orca_core.ports import wait_for
from orca_core.supervised import Supervised, tail
from orca_slurm import slurm

HELD = "orca: holding Slurm job"
HOLD = ("import os, signal; print('" + HELD + "', os.environ['SLURM_JOB_ID'], 'on', os.environ['SLURM_JOB_NODELIST'],"
        " flush=True); signal.pause()")
GRANTED = re.compile(re.escape(HELD) + r" (\S+) on (\S+)")
RELEASE_TIMEOUT = 60.0  # seconds to wait for a released job to leave squeue


def hold_command() -> list[str]:
    """What salloc runs in the allocation it got: print the job and its nodes, then wait."""
    return [sys.executable, "-c", HOLD]


class Allocation:
    """A job's id and nodes, once acquired; `release()` ends what Orca made of it (the steps called `step_name`)."""

    def __init__(self, step_name: str):
        self.step_name = step_name
        self.job = ""
        self.nodes: list[str] = []

    def acquire(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class CurrentAllocation(Allocation):
    """The allocation this program runs in (SLURM_JOB_ID): used, never released; only Orca's steps end."""

    def __init__(self, job: str, nodelist: str, step_name: str = ""):
        super().__init__(step_name)
        self.job = job
        self.nodelist = nodelist

    def acquire(self) -> None:
        self.nodes = slurm.hostnames(self.nodelist)

    def release(self) -> None:
        """Cancel any of Orca's steps that outlived their srun (e.g. one killed by SIGKILL)."""
        left = slurm.steps(self.job, self.step_name)
        if left:
            slurm.run("scancel", *left)


class RequestedAllocation(Allocation):
    """An allocation `salloc_argv` requests, held by salloc under the supervisor until `release()`."""

    def __init__(self, salloc_argv: list[str], log: str, pending_timeout: float, step_name: str):
        super().__init__(step_name)
        self.salloc_argv = salloc_argv
        self.log = log
        self.pending_timeout = pending_timeout
        self._salloc: Supervised | None = None

    def acquire(self) -> None:
        """Wait until Slurm grants the allocation; SlurmError (nothing left queued) if it stays pending."""
        self._salloc = Supervised("the Slurm allocation", [*self.salloc_argv, *hold_command()], HELD, self.log,
                                  grace=10.0)
        try:
            self._salloc.start(timeout=self.pending_timeout)
        except LaunchError as error:
            self._salloc = None
            said = tail(self.log)
            if "queued and waiting for resources" in said and HELD not in said:
                raise slurm.SlurmError(
                    f"the Slurm allocation stayed pending for {self.pending_timeout:g}s and was withdrawn:\n"
                    f"{said.strip()}\nwait for the cluster to be less busy, ask for less, pick another "
                    "partition, or pass a longer pending_timeout"
                ) from None
            raise slurm.SlurmError(f"Slurm refused the allocation `{' '.join(self.salloc_argv)}`:\n{error}") from None
        self.job, nodelist = GRANTED.search(tail(self.log)).groups()
        self.nodes = slurm.hostnames(nodelist)

    def release(self) -> None:
        """Relinquish the allocation (ending its steps) and wait until Slurm has let it go; idempotent."""
        salloc, self._salloc = self._salloc, None
        if salloc is None:
            return
        salloc.stop()
        wait_for(lambda: self.job not in slurm.jobs(), RELEASE_TIMEOUT, f"Slurm job {self.job} to end")


def current(step_name: str = "") -> CurrentAllocation | None:
    """The allocation this program runs in, from Slurm's environment; None outside one."""
    job = os.environ.get("SLURM_JOB_ID")
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    return CurrentAllocation(job, nodelist, step_name) if job and nodelist else None
