"""OrcaContext.log_output in a real Jupyter kernel: the JVM's and Ray's output reach the cells."""

import json

import nbformat
from nbclient import NotebookClient

SETUP = """
import sys, threading, time
from orca_core import OrcaContext, init_orca_context, stop_orca_context

class Tee:
    '''Forwards to the cell's stream and remembers what passed, to wait on it.'''
    def __init__(self, stream):
        self.stream, self.seen = stream, []
    def write(self, text):
        self.seen.append(text)
        return self.stream.write(text)
    def flush(self):
        self.stream.flush()
    def __getattr__(self, name):
        return getattr(self.stream, name)

def wait_seen(tee, text, timeout=60):
    deadline = time.monotonic() + timeout
    while text not in "".join(tee.seen):
        if time.monotonic() > deadline:
            raise TimeoutError(text)
        time.sleep(0.05)
"""

CELLS = [
    SETUP,
    "OrcaContext.log_output = True\n"
    "sc = init_orca_context(cluster_mode='local', cores=1, memory='1g', init_ray_on_spark=True, include_webui=False)",
    "sys.stdout = out = Tee(sys.stdout)\n"
    "sys.stderr = err = Tee(sys.stderr)\n"
    "sc._jvm.java.lang.System.out.println('hello from the JVM')\n"
    "sc._jvm.java.lang.System.err.println('complaint from the JVM')\n"
    "wait_seen(out, 'hello from the JVM'); wait_seen(err, 'complaint from the JVM')",
    "import ray\n"
    "@ray.remote\n"
    "def speak():\n"
    "    print('hello from a Ray task')\n"
    "    return 1\n"
    "ray.get(speak.remote())\n"
    "wait_seen(out, 'hello from a Ray task')",
    "import psutil\n"
    "ids = {t.native_id for t in threading.enumerate() if t.name.startswith('orca-forward')}\n"
    "def cpu():\n"
    "    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in ids)\n"
    "before = cpu(); threading.Event().wait(2.0); idle = cpu() - before\n"
    "print('FORWARDERS', len(ids), 'IDLE_CPU', idle)",
    "sys.stdout, sys.stderr = out.stream, err.stream\nstop_orca_context()",
    "sc = init_orca_context(cluster_mode='local', cores=1, memory='1g')\n"
    "sc._jvm.java.lang.System.out.println('second context in the same kernel')\n"
    "stop_orca_context()",
]


def _texts(nb, index=None):
    cells = nb.cells if index is None else [nb.cells[index]]
    return "".join(o.get("text", "") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_log_output_reaches_notebook_cells(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    NotebookClient(nb, timeout=480, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert "hello from the JVM" in _texts(nb, 2)
    assert "complaint from the JVM" in _texts(nb, 2)
    assert "hello from a Ray task" in _texts(nb, 3)
    forwarders, idle = _texts(nb, 4).split("FORWARDERS")[1].split("IDLE_CPU")
    assert int(forwarders) == 2
    assert float(idle) < 0.05, f"forwarders used {idle} s of CPU in 2 s idle"  # blocked in read, not polling
    assert "second context in the same kernel" in _texts(nb)
    json.dumps(nb)  # the executed notebook is intact
