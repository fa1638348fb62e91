import json
import subprocess
import sys

import pytest


def orca(*args, check=True):
    return subprocess.run([sys.executable, "-m", "orca_core.cli", *args], capture_output=True, text=True,
                          check=check, timeout=120)


def test_plan_prints_the_plan_as_json_and_starts_nothing():
    out = orca("plan", "--cluster-mode", "local", "--cores", "3", "--memory", "1.5g", "--init-ray-on-spark",
               "--conf", "spark.app.name=planned", "--option", "include_webui=false")
    plan = json.loads(out.stdout)
    assert plan["master"] == "local[3]"
    assert plan["spark_conf"]["spark.driver.memory"] == "1536m"
    assert plan["spark_conf"]["spark.app.name"] == "planned"
    assert plan["ray"]["kind"] == "local" and plan["ray"]["cpus_per_node"] == 3
    assert plan["ray"]["include_dashboard"] is False


def test_plan_errors_are_one_clear_line():
    out = orca("plan", "--cluster-mode", "lokal", check=False)
    assert out.returncode == 2
    assert out.stderr.startswith('orca: error: unknown cluster_mode "lokal" (did you mean "local"?)')
    out = orca("plan", "--option", "include_webui=maybe", check=False)
    assert out.returncode == 2 and "include_webui must be bool" in out.stderr


@pytest.mark.parametrize("mode, dist", [("local", "orca-local"), ("standalone", "orca-standalone"),
                                        ("yarn-client", "orca-yarn"), ("k8s-client", "orca-k8s")])
def test_plugins_lists_modes_with_their_distribution(mode, dist):
    data = json.loads(orca("plugins", "--json").stdout)
    rows = {row["name"]: row for row in data["plugins"]}
    assert rows[mode]["distribution"] == dist and rows[mode]["version"] == "0.1.0"
    assert rows["DRAM"]["kind"] == "data store"


def test_doctor_reports_java_pyspark_and_ray():
    out = orca("doctor")
    for line in ("java", "pyspark", "ray", "orca-core", "modes"):
        assert any(row.startswith(line) for row in out.stdout.splitlines()), line


def test_doctor_names_packages_without_bytecode(tmp_path, monkeypatch):
    import compileall

    from orca_core.cli import uncompiled

    (tmp_path / "slowpkg").mkdir()
    (tmp_path / "slowpkg" / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert uncompiled(["slowpkg", "no_such_package"]) == ["slowpkg"]
    assert compileall.compile_dir(str(tmp_path / "slowpkg"), quiet=1)
    assert uncompiled(["slowpkg"]) == []
