"""examples/train_torch_disk.py trains in Spark tasks from DISK_2 and learns the true weights."""

import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "train_torch_disk.py")


def test_the_example_learns_the_weights():
    out = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("rows in DISK_2") == 2
    assert "learned weights [2.0, -1.0, 0.5, 3.0]" in out.stdout
