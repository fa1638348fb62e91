import json
import subprocess
import sys

HEAVY = ("pyspark", "ray", "pyarrow", "pandas", "numpy", "filelock", "psutil", "kubernetes", "hdfs", "conda_pack",
         "venv_pack", "orca_local", "orca_standalone", "orca_yarn", "orca_k8s", "orca_storage_disk")


def test_import_loads_no_engine_and_no_plugin():
    code = f"import json, sys, orca_core; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_plugins_load_only_when_asked():
    code = ("import json, sys; from orca_core import OrcaContext, plan_orca_context; "
            "before = 'orca_local' in sys.modules; plan_orca_context(cores=1); "
            "print(json.dumps([before, 'orca_local' in sys.modules, 'pyspark' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, True, False]
