"""The benchmark runs end to end (smoke test: its figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_bench_quick_runs(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| figure | glove | sbert |" in proc.stdout
    assert "| target | value | goal | met |" in proc.stdout
    assert not out.exists()  # --quick never overwrites the committed figures
