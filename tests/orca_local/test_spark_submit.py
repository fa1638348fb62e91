"""cluster_mode="spark-submit": a program launched by spark-submit attaches to its SparkContext."""

import os
import subprocess
import sys
import textwrap

import pyspark


def test_program_run_by_spark_submit_attaches(tmp_path, libs):
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(f"""
        from orca_core import OrcaContext, init_orca_context, stop_orca_context
        sc = init_orca_context(cluster_mode="spark-submit", extra_python_lib={libs["py"]!r})
        assert OrcaContext.get_spark_context() is sc
        print("RESULT", sc.appName, sc.parallelize(range(4), 2).map(lambda x: __import__("helpers").f(x)).sum())
        stop_orca_context()
        assert sc._jsc is None  # stopped; the JVM itself belongs to spark-submit
        print("ATTACHED-STOP-OK")
    """))
    submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    out = subprocess.run(
        [submit, "--master", "local[2]", "--name", "submitted app", str(program)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RESULT submitted app 12" in out.stdout
    assert "ATTACHED-STOP-OK" in out.stdout
