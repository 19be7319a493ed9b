"""The evaluation task set stays valid: every reference solution passes its hidden test
and its visible doctests, and obviously wrong answers fail."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_task_set_validates():
    out = subprocess.run([sys.executable, str(ROOT / "evals" / "validate.py")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "40/40 tasks pass" in out.stdout
