"""An honest ingest summary: files not read, counted by suffix (text, --json, status),
--include to read them as plain text, --profile's stage table, and parallel
reading that changes nothing but the time."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from ingest.load import load_paths, not_read_key
from tests.test_cli import run_cli


@pytest.fixture
def tree(tmp_path):
    """Two documents and seven files ingest does not read by default."""
    root = tmp_path / "tree"
    (root / "src").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "guide.md").write_text("# Guide\n\nThe guide explains the quokka.")
    (root / "NEWS.gz").write_bytes(gzip.compress(b"News\n\nThe numbat release."))
    (root / "src" / "main.c").write_text("/* the wombat parser */\nint main(void) { return 0; }\n")
    (root / "src" / "util.c").write_text("int util(void) { return 1; }\n")
    (root / "run.pl").write_text("print 'hello';\n")
    (root / "Makefile").write_text("all:\n\techo the bilby target\n")
    (root / "copyright").write_text("Copyright the authors.\n")
    (root / "data.json.gz").write_bytes(gzip.compress(b"{}"))
    # a GIF: an image, but not one OCR reads (ingest/ocr.py), so a binary file here
    (root / "logo.gif").write_bytes(b"GIF89a\0\0\0\0")
    (root / ".hidden.c").write_text("not counted")  # hidden: neither read nor counted
    (root / ".git" / "config").write_text("[core]\n")
    return root


NOT_READ = {".c": 2, "(none)": 2, ".json.gz": 1, ".pl": 1, ".gif": 1}


def test_files_not_read_are_counted_by_suffix(tree):
    loaded = load_paths([tree])
    assert sorted(d.doc_id for d in loaded.documents) == ["NEWS.gz", "guide.md"]
    assert dict(loaded.not_read) == NOT_READ
    assert not loaded.skipped


@pytest.mark.parametrize("name,rel,include,key", [
    ("a.c", "src/a.c", (), ".c"),
    ("a.C", "a.C", (), ".c"),
    ("README", "README", (), "(none)"),
    ("a.md", "a.md", (), None),
    ("a.tar.gz", "a.tar.gz", (), ".tar.gz"),
    ("a.txt.bz2", "a.txt.bz2", (), None),
    ("a.c", "src/a.c", ("*.c",), None),
    ("a.c", "src/a.c", ("src/**",), None),
    ("a.c", "lib/a.c", ("src/",), ".c"),
    ("Makefile", "x/Makefile", ("Makefile",), None),
])
def test_not_read_key(name, rel, include, key):
    from ingest.load import include_patterns

    assert not_read_key(name, rel, include_patterns(include)) == key


def test_cli_summary_json_and_status(tree, tmp_path, capsys):
    store = str(tmp_path / "store")
    code, out, err = run_cli(capsys, "ingest", str(tree), "--store", store, "--methods", "bm25",
                             "--no-progress")
    assert code == 0, err
    assert ("7 other files not read: (none) 2, .c 2, .gif 1, .json.gz 1, .pl 1 "
            "(--include GLOB reads them as text)") in out.splitlines()

    code, out, _ = run_cli(capsys, "status", "--store", store)
    line = next(x for x in out.splitlines() if x.startswith("last ingest "))
    assert line.endswith("2 new, 0 changed, 0 removed, 0 unchanged, 0 skipped; 7 other files "
                         "not read: (none) 2, .c 2, .gif 1, .json.gz 1, .pl 1 (--include GLOB "
                         "reads them as text)")
    code, out, _ = run_cli(capsys, "status", "--store", store, "--json")
    last = json.loads(out)["last_ingest"]
    assert last["not_read"] == NOT_READ and last["not_read_total"] == 7 and last["new"] == 2

    # --include reads the C files and the Makefile as plain text; the counts follow
    code, out, err = run_cli(capsys, "ingest", str(tree), "--store", store, "--methods", "bm25",
                             "--no-progress", "--include", "*.c", "--include", "Makefile",
                             "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["new"] == 3 and body["unchanged"] == 2
    assert body["not_read"] == {"(none)": 1, ".json.gz": 1, ".pl": 1, ".gif": 1}
    assert body["not_read_total"] == 4
    code, out, _ = run_cli(capsys, "status", "--store", store, "--json")
    assert json.loads(out)["last_ingest"]["not_read_total"] == 4

    code, out, _ = run_cli(capsys, "search", "wombat parser", "--store", store, "--method",
                           "bm25", "--json")
    hit = json.loads(out)["hits"][0]
    assert hit["doc_id"] == "src/main.c"


def test_included_binary_is_skipped_not_stored(tree):
    loaded = load_paths([tree], include=["*.gif"])
    (skipped,) = loaded.skipped
    assert skipped.path.endswith("logo.gif") and "binary file" in skipped.reason
    assert ".gif" not in loaded.not_read


def test_profile_prints_every_stage(tree, tmp_path, capsys):
    code, out, err = run_cli(capsys, "ingest", str(tree), "--store", str(tmp_path / "s"),
                             "--methods", "bm25", "--no-progress", "--profile")
    assert code == 0, err
    lines = out.splitlines()
    start = lines.index(next(x for x in lines if x.startswith("stage ")))
    stages = [x.split()[0] for x in lines[start + 1:start + 8]]
    assert stages == ["discover", "read", "extract", "chunk", "store", "index", "total"]
    formats = {x.split()[0] for x in lines[start + 9:] if x and not x.startswith("format")}
    assert formats == {"md", "text"}


def test_report_json_carries_timings_and_format_costs(tree, tmp_path, capsys):
    code, out, err = run_cli(capsys, "ingest", str(tree), "--store", str(tmp_path / "s"),
                             "--methods", "bm25", "--no-progress", "--json")
    body = json.loads(out)
    assert set(body["timings"]) >= {"discover", "read", "extract", "chunk", "store", "index",
                                    "total"}
    assert body["formats"]["md"]["files"] == 1 and body["formats"]["text"]["files"] == 1
    assert body["workers"] == 1  # a tiny folder: no reading processes started


def test_parallel_reading_gives_the_same_documents_in_one_transaction_per_batch(tmp_path):
    from ingest.pipeline import COMMIT_EVERY, ingest_paths
    from ingest.store import Store

    root = tmp_path / "many"
    root.mkdir()
    for i in range(150):
        if i % 3 == 0:
            (root / f"p{i:03}.html").write_text(
                f"<html><head><title>Page {i}</title></head><body><nav>menu</nav>"
                f"<p>Paragraph {i} about the kakapo.</p></body></html>")
        elif i % 3 == 1:
            (root / f"n{i:03}.txt.gz").write_bytes(gzip.compress(f"Note {i}.".encode()))
        else:
            (root / f"t{i:03}.md").write_text(f"# Title {i}\n\nBody {i}.")
    one = load_paths([root], workers=1)
    two = load_paths([root], workers=2)
    assert two.workers == 2 and one.workers == 1
    assert [(d.source, d.title, d.text) for d in two.documents] == \
        [(d.source, d.title, d.text) for d in one.documents]
    assert len(one.documents) == 150 and not two.skipped
    assert two.formats["html"]["files"] == 50

    with Store.open(tmp_path / "store", create=True) as store:
        report = ingest_paths(store, [root], progress=False, workers=2)
        assert report.new == 150 and report.workers == 2
        # one generation per committed batch of documents
        assert store.generation == math.ceil(150 / COMMIT_EVERY)


def test_a_suffix_in_any_bytes_is_counted_in_valid_utf8(tmp_path):
    import os

    root = tmp_path / "bytes"
    root.mkdir()
    (root / "ok.txt").write_text("fine")
    with open(os.path.join(os.fsencode(root), b"x.\x80"), "wb") as f:
        f.write(b"data")
    loaded = load_paths([root])
    assert dict(loaded.not_read) == {".\ufffd80": 1}
    json.dumps(dict(loaded.not_read), ensure_ascii=False).encode("utf-8")
