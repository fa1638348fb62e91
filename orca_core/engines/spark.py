"""Spark: a driver JVM launched and owned by this process, or a running one Orca attaches to."""

from __future__ import annotations

import collections
import glob
import os
import shutil
import signal
import sys
import threading

import psutil

from orca_core.engines import class_data, jit
from orca_core.errors import LaunchError
from orca_core.plan import LaunchPlan
from orca_core.supervised import close_and_wait, hold, report_death

DRIVER_JVM = "the Spark driver JVM"
LAST_LINES = 10
DRIVER_MARKER = "orca-driver"  # in a local-cluster application folder: the pid and start time of its driver


def active_spark_context():
    """The SparkContext running in this process (pyspark shell, notebook, spark-submit), or None.

    Cheap: without pyspark imported, nothing runs."""
    module = sys.modules.get("pyspark.context")
    return module.SparkContext._active_spark_context if module is not None else None


def launch_gateway(plan: LaunchPlan, forward_output: bool = False):
    """Start the driver JVM for `plan` (safe to call from a worker thread).

    What the JVM writes to stderr passes through this process (to its stderr), which keeps the last
    lines for the report of an unexpected end (see `_watch`). With `forward_output`, what the JVM
    prints reaches this process's `sys.stdout` and `sys.stderr` (as they are when each line arrives,
    so a notebook shows it in the cell).
    """
    from pyspark import SparkConf
    from pyspark.java_gateway import launch_gateway as pyspark_launch

    from orca_core.spark_security import public

    # on the JVM's command line: no secrets (the SparkContext gets the whole conf over py4j)
    conf = SparkConf(loadDefaults=False).setAll(sorted(public(plan.spark_conf).items()))
    if plan.master:
        conf.setMaster(plan.master)
    driver = jit.java_options(plan.spark_conf.get(class_data.OPTION, ""))
    executor = plan.spark_conf.get(class_data.EXECUTOR_OPTION, "")
    if class_data.executors_run_here(plan.master):
        executor = jit.java_options(executor)
    archive = class_data.for_driver(plan.spark_conf)
    if archive is not None:
        driver = archive.java_options(driver)
        executor = archive.executor_options({**plan.spark_conf, class_data.EXECUTOR_OPTION: executor},
                                            plan.master) or executor
    conf.set(class_data.OPTION, driver)
    jvm_conf = {class_data.EXECUTOR_OPTION: executor} if executor else {}  # what the SparkContext's conf says too
    conf.setAll(jvm_conf.items())
    last = collections.deque(maxlen=LAST_LINES)
    pipes = {name: os.pipe() for name in (("stdout", "stderr") if forward_output else ("stderr",))}
    # read from before the JVM starts: what it prints while starting never fills the pipe
    forwarders = [forward(os.fdopen(read, "rb"), name if forward_output else 2,
                          last if name == "stderr" else None) for name, (read, _) in pipes.items()]
    popen_kwargs = {"start_new_session": True, **{name: write for name, (_, write) in pipes.items()}}
    try:
        gateway = pyspark_launch(conf, popen_kwargs=popen_kwargs)
    except Exception as error:
        if archive is not None:
            archive.finish(None)
        raise LaunchError(f"the Spark driver JVM failed to start: {error}") from error
    finally:
        for _, write in pipes.values():
            os.close(write)
    gateway.class_data = archive
    gateway.jvm_conf = jvm_conf
    hold(gateway.proc)  # the JVM exits when its stdin closes: a forked child must not keep it open
    gateway.forwarders = forwarders
    gateway.watcher = threading.Thread(target=_watch, args=(gateway, last, forwarders[-1]), name="orca-watch jvm",
                                       daemon=True)
    gateway.watcher.start()
    return gateway


def _watch(gateway, last: collections.deque, stderr: threading.Thread) -> None:
    """Wait for the driver JVM to end; unless Orca stopped it, report its death with its last lines on stderr."""
    proc = gateway.proc
    proc.wait()
    stderr.join(timeout=5)  # the lines the JVM wrote last
    if vars(gateway).get("stopping"):
        return
    code = proc.returncode
    status = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    lines = b"".join(last).decode(errors="replace").rstrip()
    fix = "its SparkContext is gone: init_orca_context() starts a new context"
    report_death(DRIVER_JVM, f"java (pid {proc.pid}, {status})", "its stderr", lines,
                 fix + (f"; its last lines on stderr:\n{lines}" if lines else ""))


def forward(stream, target: str | int, last: collections.deque | None = None) -> threading.Thread:
    """Copy lines from `stream` to `sys.<target>` (or to the file descriptor `target`) until EOF, keeping the
    `last` ones; blocks in read, never polls."""

    def pump():
        with stream:
            for line in iter(stream.readline, b""):
                if last is not None:
                    last.append(line)
                try:
                    if isinstance(target, int):
                        view = memoryview(line)
                        while view:
                            view = view[os.write(target, view):]
                        continue
                    out = getattr(sys, target)
                    out.write(line.decode(errors="replace"))
                    out.flush()
                except (ValueError, OSError):  # the target was closed; keep draining the pipe
                    pass

    thread = threading.Thread(target=pump, name=f"orca-forward-{target}", daemon=True)
    thread.start()
    return thread


class SparkEngine:
    """The SparkContext of a context, and how to stop it and its JVM."""

    def __init__(self, plan: LaunchPlan, gateway=None):
        from pyspark import SparkConf, SparkContext

        self.gateway = gateway
        self.owned = plan.spark != "attach"
        self.running_before = active_spark_context() is not None  # the user's: left running at stop
        if not self.owned:
            self.spark_context = SparkContext.getOrCreate()
            for path in plan.py_files:
                self.spark_context.addPyFile(path)
        else:
            conf = SparkConf(loadDefaults=False).setAll(sorted(plan.spark_conf.items()))
            if gateway is not None:  # the executors' java options the JVM was started with
                conf.setAll(sorted(vars(gateway).get("jvm_conf", {}).items()))
            if plan.master:
                conf.setMaster(plan.master)
            try:
                self.spark_context = SparkContext(conf=conf, gateway=gateway)
            except BaseException as error:
                reason = _reason(error)  # while the JVM still answers
                if gateway is not None:
                    stop_gateway(gateway)
                if isinstance(error, Exception):
                    raise LaunchError(f"the SparkContext failed to start: {reason}") from None
                raise
        self.work_dir = _local_cluster_work_dir(self.spark_context) if self.owned else None
        self._session = None

    def jvm_died(self) -> bool:
        """Whether the driver JVM this process launched has ended; its death is then reported (see `_watch`)."""
        watcher = vars(self.gateway).get("watcher") if self.gateway is not None else None
        if watcher is None or self.gateway.proc.returncode is None:
            return False
        watcher.join(timeout=10)
        return True

    @property
    def spark_session(self):
        if self._session is None:
            from pyspark.sql import SparkSession

            if self.running_before:
                self._session = SparkSession.builder.getOrCreate()  # the user's session, if there is one
                return self._session
            self._session = SparkSession(self.spark_context)
            SparkSession._instantiatedSession = self._session
            SparkSession._activeSession = self._session
        return self._session

    def stop(self) -> None:
        """Stop the SparkContext and, when this process launched it, the JVM; idempotent.

        A SparkContext that ran before Orca attached to it keeps running."""
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        sc, self.spark_context = self.spark_context, None
        if sc is None or self.running_before:
            return
        try:
            if self.jvm_died():
                sc._jsc = None  # nothing to stop in a dead JVM: pyspark's stop then clears only its own side
                sc.stop()
            elif self._session is not None:
                self._session.stop()
            else:
                sc.stop()
        finally:  # also when the JVM died and stopping the SparkContext failed
            SparkSession._instantiatedSession = None
            SparkSession._activeSession = None
            if self.owned:  # else spark-submit owns its JVM
                gateway = self.gateway or SparkContext._gateway
                SparkContext._gateway = None
                SparkContext._jvm = None
                if SparkContext._active_spark_context is sc:
                    SparkContext._active_spark_context = None
                if gateway is not None:
                    stop_gateway(gateway)
            if self.work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)


def _local_cluster_work_dir(sc) -> str | None:
    """The folder where the workers of a `local-cluster[...]` master (inside the driver JVM) keep this
    application's executors: `$SPARK_HOME/work/<app id>`, in the pyspark install; removed at stop.

    It is marked with this driver, and the folders of Orca drivers that died before their stop could
    remove them are removed here."""
    home = sc._jvm.System.getenv("SPARK_HOME") if sc.master.startswith("local-cluster") else None
    if not home:
        return None
    work = os.path.join(home, "work")
    for marker in glob.glob(os.path.join(work, "*", DRIVER_MARKER)):
        if not _alive(marker):
            shutil.rmtree(os.path.dirname(marker), ignore_errors=True)
    folder = os.path.join(work, sc.applicationId)
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, DRIVER_MARKER)
    with open(marker + ".tmp", "w") as out:  # whole or absent, for a driver reading it at once
        out.write(f"{os.getpid()} {psutil.Process().create_time()!r}\n")
    os.replace(marker + ".tmp", marker)
    return folder


def _alive(marker: str) -> bool:
    """Whether the driver a work folder's marker names (pid and start time) still runs."""
    try:
        with open(marker) as held:
            pid, started = held.read().split()
        return psutil.Process(int(pid)).create_time() == float(started)
    except (OSError, ValueError, psutil.Error):
        return False


def _reason(error: BaseException) -> str:
    """The Java exception behind a py4j error (its text needs the JVM), else the error's text."""
    java = getattr(error, "java_exception", None)
    try:
        return str(java.toString()) if java is not None else f"{type(error).__name__}: {error}"
    except Exception:
        return type(error).__name__


def stop_gateway(gateway, timeout: float = 20.0) -> None:
    """Close the py4j gateway and wait for the JVM (and its Python workers) to exit."""
    import psutil

    gateway.stopping = True  # the JVM's end is no death
    proc = vars(gateway).get("proc")
    family = []
    if proc is not None:
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
    try:
        gateway.shutdown()
    except Exception:
        pass
    if proc is None:
        return
    archive = vars(gateway).get("class_data")
    if archive is not None and archive.recording is not None:
        print("Orca: the driver JVM saves its class-data archive (once per Java and Spark install)",
              file=sys.stderr, flush=True)
    close_and_wait(proc, timeout)  # the JVM exits when its stdin closes
    if archive is not None:
        archive.finish(proc.returncode)
    for thread in (*vars(gateway).get("forwarders", ()), vars(gateway).get("watcher")):
        if thread is not None:
            thread.join(timeout=5)
    _, alive = psutil.wait_procs(family, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def root_cause(error: Exception) -> str:
    """The message of what failed in a Spark task, without the JVM's stack."""
    java = getattr(error, "java_exception", None)
    text = str(java.getMessage()) if java is not None else str(error)
    marker = "RuntimeError: "
    if marker in text:
        return text[text.rindex(marker) + len(marker):].split("\n\tat ")[0].strip()
    return text.splitlines()[0] if text else repr(error)
