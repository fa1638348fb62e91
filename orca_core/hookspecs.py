"""Every hook a plugin can implement. All are prefixed `orca_`.

Registration hooks yield typed records (`orca_core.records`); Orca calls each of them once per
plugin manager and concatenates every plugin's results. Event hooks announce what happened; their
return values are ignored. Behaviour lives on backend classes selected by name, never in a
`firstresult` chain where registration order would decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from orca_core.records import ClusterMode, DataStore, EnvPacker, FileSystemProvider
    from orca_core.state import RunningContext

hookspec = pluggy.HookspecMarker("orca")


@hookspec
def orca_cluster_modes() -> Iterable[ClusterMode]:
    """Yield the cluster modes this plugin provides.

    Results of all plugins are concatenated; a name or alias provided twice is an error that
    names both distributions. Example::

        from orca_core import hookimpl
        from orca_core.records import ClusterMode

        @hookimpl
        def orca_cluster_modes():
            yield ClusterMode("mycluster", MyBackend, "Run on my cluster", aliases=("mine",))
    """


@hookspec
def orca_data_stores() -> Iterable[DataStore]:
    """Yield the training data stores this plugin provides (see `OrcaContext.train_data_store`).

    Results are concatenated; two stores matching one setting is an error. Example::

        @hookimpl
        def orca_data_stores():
            yield DataStore("MMAP", r"MMAP", open=open_mmap_store, summary="memory-mapped Arrow")
    """


@hookspec
def orca_env_packers() -> Iterable[EnvPacker]:
    """Yield the environment packers this plugin provides (conda, venv, a pre-packed archive...).

    Results are concatenated and tried by descending `priority` when detecting how to pack
    the running environment. Example::

        @hookimpl
        def orca_env_packers():
            yield EnvPacker("pex", PexPacker, "pack with pex", priority=5)
    """


@hookspec
def orca_filesystems() -> Iterable[FileSystemProvider]:
    """Yield the URL schemes whose files this plugin lists and opens for the "pandas" read backend.

    Results are concatenated; a scheme provided twice is an error that names both distributions.
    Example::

        from orca_core.records import FileSystemProvider

        @hookimpl
        def orca_filesystems():
            yield FileSystemProvider("s3", lambda url: MyS3(url), "Amazon S3 through boto3")
    """


@hookspec
def orca_cli_commands(subparsers) -> None:
    """Add subcommands to the `orca` command (an `argparse` subparsers object).

    Every implementation is called; set `func` on your parser: it gets the parsed arguments and
    returns the exit status. Example (`orca k8s gc`)::

        @hookimpl
        def orca_cli_commands(subparsers):
            k8s = subparsers.add_parser("k8s").add_subparsers(dest="k8s_command", required=True)
            k8s.add_parser("gc").set_defaults(func=run_gc)
    """


@hookspec
def orca_context_started(context: RunningContext) -> None:
    """Called once a context is up: engines started, handles available.

    Every implementation is called; return values are ignored. One that raises stops the context
    and `init_orca_context` raises `LaunchError` naming the plugin. Example::

        @hookimpl
        def orca_context_started(context):
            print("Spark UI:", context.spark_ui_url)
    """


@hookspec
def orca_context_stopping(context: RunningContext) -> None:
    """Called at `stop_orca_context()`, before Ray and Spark are stopped.

    Every implementation is called; an exception is logged and does not prevent the stop.
    Example::

        @hookimpl
        def orca_context_stopping(context):
            flush_my_metrics()
    """
