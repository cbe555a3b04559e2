"""`ingest --engine ray` on a real local Ray: the same rows and vectors as a plain
ingest, and no Ray process left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.store import Store
from tests.conftest import CORPUS, REPO

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

CHUNK_COLUMNS = ("id, document, position, text, start_char, end_char, n_tokens, created_gen, "
                 "page_start, page_end, section")


def ray_processes() -> list[str]:
    """Command lines of live Ray processes (raylet, gcs_server, workers, ...)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(k in cmd for k in ("raylet", "gcs_server", "ray::",
                                                   "ray/_private", "ray/dashboard")):
            found.append(cmd[:120])
    return found


def ingest(store: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ragmini.cli", "ingest", str(CORPUS),
                           "--store", str(store), "--methods", "glove,sbert,bm25", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def test_ray_ingest_equals_plain_row_for_row_and_leaves_no_process(tmp_path):
    assert ray_processes() == []
    plain = ingest(tmp_path / "plain", "--no-progress")
    assert plain.returncode == 0, plain.stderr
    on_ray = ingest(tmp_path / "ray", "--engine", "ray")
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "84 chunks" in on_ray.stdout
    assert ray_processes() == []

    with Store.open(tmp_path / "plain") as a, Store.open(tmp_path / "ray") as b:
        rows = f"SELECT {CHUNK_COLUMNS} FROM chunks ORDER BY id"
        assert a.db.execute(rows).fetchall() == b.db.execute(rows).fetchall()
        docs = "SELECT id, source, doc_id, title, content_hash FROM documents ORDER BY id"
        assert a.db.execute(docs).fetchall() == b.db.execute(docs).fetchall()
        assert a.methods() == b.methods()
        for method in ("glove", "sbert"):
            assert a.method_info(method) == b.method_info(method)
            ids_a, vec_a = a.vectors(method)
            ids_b, vec_b = b.vectors(method)
            assert np.array_equal(ids_a, ids_b) and len(ids_a) == 84
            assert np.abs(vec_a - vec_b).max() <= 1e-5


def test_unreachable_ray_address_is_a_clear_error(tmp_path):
    out = ingest(tmp_path / "s", "--engine", "ray", "--ray-address", "127.0.0.1:1",
                 "--no-progress")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "--ray-address" in out.stderr
    assert ray_processes() == []
