"""Ingest never hangs or aborts on what real folders hold: FIFOs, sockets, devices,
file names in any bytes, files that change while read, symbolic link loops.

The two reported defects are replayed exactly (a FIFO hung `ragmini ingest`; a
file named b"caf\\xe9.txt" aborted the batch in content_hash), through the real
CLI in a subprocess with a timeout, so a regression fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import QueryError

from ingest.load import load_paths
from ingest.paths import decode_source, display, display_source, encode_source, scrub

CLI_TIMEOUT = 120  # seconds; a hang fails the test instead of the run


def ragmini(*args, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """`ragmini ARGS` as a user runs it (arguments may be bytes), bounded in time."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ragmini.cli", *args], capture_output=True,
                          timeout=timeout, env=env)


class Hung(BaseException):
    """Not an Exception: nothing in ingest may catch it as a bad file's error."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (instead of hanging) when the block runs longer than `seconds`; a
    blocking open() of a FIFO is interrupted too (PEP 475: the handler raises)."""
    def expire(signum, frame):
        raise Hung(f"still running after {seconds}s: it would hang")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def make_socket(path: Path) -> None:
    """A Unix socket file at `path` (bound in a short folder: AF_UNIX paths are short)."""
    short = Path(f"/tmp/rm-sock-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        short.unlink()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(short))
    os.rename(short, path)


def reasons(loaded) -> dict[str, str]:
    return {os.path.basename(decode_source(s.path)): s.reason for s in loaded.skipped}


# -- the two reported defects, exactly -------------------------------------------


def test_fifo_does_not_hang_ingest(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Plain words about ranking.\n")
    os.mkfifo(docs / "pipe.txt")  # no writer will ever appear
    done = ragmini("ingest", str(docs), "--store", str(tmp_path / "st"), "--methods", "bm25",
                   "--no-progress")
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "Traceback" not in err
    assert f"skipped {docs / 'pipe.txt'}: named pipe (FIFO), not a regular file" in err
    assert "1 new" in done.stdout.decode()


def test_non_utf8_file_name_does_not_abort_the_batch(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Plain words about ranking.\n")
    name = os.fsencode(docs) + b"/caf\xe9.txt"
    fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"Espresso and other coffee words.\n")
    os.close(fd)
    store = str(tmp_path / "st")

    done = ragmini("ingest", str(docs), "--store", store, "--methods", "bm25", "--no-progress",
                   "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    report = json.loads(done.stdout.decode("utf-8"))  # strict: no surrogate got out
    assert report["new"] == 2 and report["skipped"] == [] and report["documents"] == 2
    stored = encode_source(os.fsdecode(name))
    assert stored == str(docs) + "/caf\ufffdE9.txt"

    done = ragmini("search", "espresso coffee", "--method", "bm25", "--store", store, "--json")
    assert done.returncode == 0, done.stderr.decode()
    (hit, *_) = json.loads(done.stdout.decode("utf-8"))["hits"]
    assert hit["source"] == stored
    assert hit["doc_id"] == "caf\ufffdE9.txt"
    assert hit["title"] == "caf\ufffd"  # the name as people see it
    assert os.fsencode(decode_source(hit["source"])) == name  # lossless

    done = ragmini("ingest", str(docs), "--store", store, "--methods", "bm25", "--no-progress",
                   "--json")  # again: nothing changes
    again = json.loads(done.stdout.decode("utf-8"))
    assert (again["new"], again["changed"], again["unchanged"]) == (0, 0, 2)

    done = ragmini("remove", name, "--store", store, "--json")  # the real (bytes) path
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout.decode("utf-8")) == {"removed": [stored], "documents": 1}

    done = ragmini("status", "--store", store, "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout.decode("utf-8"))["documents"] == 1


def test_non_utf8_names_in_plain_output_show_replacement_characters(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Plain words.\n")
    os.close(os.open(os.fsencode(docs) + b"/\xff\xfe.md", os.O_WRONLY | os.O_CREAT))  # empty
    done = ragmini("ingest", str(docs), "--store", str(tmp_path / "st"), "--methods", "bm25",
                   "--no-progress")
    assert done.returncode == 0, done.stderr.decode()
    assert f"skipped {docs}/\ufffd\ufffd.md: empty file" in done.stderr.decode("utf-8")


# -- what a path is decides whether it is opened ----------------------------------


def test_socket_device_and_fifo_are_skipped_never_opened(tmp_path, monkeypatch):
    (tmp_path / "good.md").write_text("# Good\n\nText.\n")
    os.mkfifo(tmp_path / "pipe.md")
    make_socket(tmp_path / "sock.txt")
    os.symlink("/dev/zero", tmp_path / "zero.txt")  # endless if it were read
    os.symlink("/dev/null", tmp_path / "null.md")
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.path.basename(os.fsdecode(path)))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    with deadline(30):
        loaded = load_paths([tmp_path], follow_links=True)
    monkeypatch.undo()
    assert [d.doc_id for d in loaded.documents] == ["good.md"]
    assert reasons(loaded) == {
        "pipe.md": "named pipe (FIFO), not a regular file",
        "sock.txt": "socket, not a regular file",
        "zero.txt": "character device, not a regular file",
        "null.md": "character device, not a regular file",
    }
    assert opened == ["good.md"]


def test_device_node_in_the_folder(tmp_path):
    try:
        os.mknod(tmp_path / "zero.txt", 0o600 | 0o020000, os.makedev(1, 5))  # S_IFCHR /dev/zero
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    (tmp_path / "ok.txt").write_text("fine")
    with deadline(30):
        loaded = load_paths([tmp_path])
    assert reasons(loaded) == {"zero.txt": "character device, not a regular file"}


def test_path_replaced_by_a_fifo_after_discovery_is_not_blocked_on(tmp_path, monkeypatch):
    import ingest.load

    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    # As if discovery had seen a regular file there a moment earlier.
    monkeypatch.setattr(ingest.load, "_kind", lambda path, follow: "file")
    with deadline(30):
        loaded = load_paths([pipe])
    assert not loaded.documents
    assert loaded.skipped[0].reason == "named pipe (FIFO), not a regular file"


def test_path_replaced_by_a_link_after_discovery_is_not_followed(tmp_path, monkeypatch):
    import ingest.load

    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", tmp_path / "link.txt")
    monkeypatch.setattr(ingest.load, "_kind", lambda path, follow: "file")
    loaded = load_paths([tmp_path / "link.txt"])
    assert not loaded.documents
    assert "symbolic link not followed" in loaded.skipped[0].reason


def test_permission_denied_on_open(tmp_path, monkeypatch):
    """As test_consistency's root-proof check, through os.open (what ingest calls)."""
    (tmp_path / "locked.txt").write_text("secret")
    (tmp_path / "ok.txt").write_text("fine")
    real_open = os.open

    def deny(path, *args, **kwargs):
        if os.fsdecode(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    loaded = load_paths([tmp_path])
    monkeypatch.undo()
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    assert [s.reason for s in loaded.skipped] == ["permission denied"]


def test_unlistable_folder_is_reported(tmp_path, monkeypatch):
    (tmp_path / "ok.txt").write_text("fine")
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fsdecode(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    loaded = load_paths([tmp_path])
    monkeypatch.undo()
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    assert reasons(loaded) == {"locked": "cannot list folder: Permission denied"}


# -- symbolic link loops -------------------------------------------------------


def test_symlink_loops_with_follow_links_end(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.md").write_text("# A\n\nalpha\n")
    os.symlink(root, root / "sub" / "up")  # folder loop
    os.symlink(".", root / "here")  # folder loop onto itself
    os.symlink("self.md", root / "self.md")  # a link to itself
    os.symlink("b.txt", root / "a.txt")  # two links to each other
    os.symlink("a.txt", root / "b.txt")
    os.symlink("missing.txt", root / "broken.txt")
    with deadline(30):
        loaded = load_paths([root], follow_links=True)
    assert [d.doc_id for d in loaded.documents] == ["sub/a.md"]  # once, not once per loop
    assert reasons(loaded) == {
        "up": "symbolic link loop (folder already visited)",
        "here": "symbolic link loop (folder already visited)",
        "self.md": "symbolic link loop",
        "a.txt": "symbolic link loop",
        "b.txt": "symbolic link loop",
        "broken.txt": "broken symbolic link (its target does not exist)",
    }
    with deadline(30):
        unfollowed = load_paths([root])
    assert [d.doc_id for d in unfollowed.documents] == ["sub/a.md"]
    assert set(reasons(unfollowed).values()) == {"symbolic link not followed (use --follow-links)"}


# -- files that change while they are read ------------------------------------


def _grow_on_read(monkeypatch, path: Path, times: int) -> list[int]:
    """Append to `path` right after each of its first `times` reads (a writer at work)."""
    import ingest.load

    real = ingest.load._read_all
    calls = []

    def read_all(fd, limit):
        data = real(fd, limit)
        calls.append(1)
        if len(calls) <= times:
            with open(path, "ab") as f:
                f.write(b" more words")
        return data

    monkeypatch.setattr(ingest.load, "_read_all", read_all)
    return calls


def test_file_changing_while_read_is_retried_then_skipped(tmp_path, monkeypatch):
    from ingest.pipeline import ingest_paths
    from ingest.store import Store

    f = tmp_path / "busy.txt"
    f.write_text("first words")
    (tmp_path / "ok.txt").write_text("fine")
    calls = _grow_on_read(monkeypatch, f, times=99)
    with Store.open(tmp_path / "st", create=True) as store:
        report = ingest_paths(store, [f, tmp_path / "ok.txt"], progress=False)
        assert len(calls) == 2 + 1  # busy.txt twice, ok.txt once
        assert [(os.path.basename(s.path), s.reason) for s in report.skipped] == [
            ("busy.txt", "changed while being read (tried twice); nothing of it stored")]
        assert set(store.documents()) == {str(tmp_path / "ok.txt")}  # nothing half-read


def test_file_changing_once_is_read_again(tmp_path, monkeypatch):
    f = tmp_path / "busy.txt"
    f.write_text("first words")
    _grow_on_read(monkeypatch, f, times=1)
    (doc,) = load_paths([tmp_path]).documents
    assert doc.text == "first words more words"  # the settled file, whole


def test_jsonl_changing_while_read_stores_none_of_it(tmp_path, monkeypatch):
    import ingest.load

    f = tmp_path / "corpus.jsonl"
    f.write_text('{"_id": "d1", "text": "one"}\n{"_id": "d2", "text": "two"}\n')
    real = ingest.load._jsonl_rows

    def rows(handle, source):
        for i, doc in enumerate(real(handle, source)):
            if i == 0:
                with open(f, "a") as out:
                    out.write('{"_id": "d3", "text": "three"}\n')
            yield doc

    monkeypatch.setattr(ingest.load, "_jsonl_rows", rows)
    loaded = load_paths([tmp_path])
    assert not loaded.documents
    assert loaded.skipped[0].reason.startswith("changed while being read")


# -- names in any bytes --------------------------------------------------------


@pytest.mark.parametrize("raw,stored", [
    (b"/d/caf\xe9.txt", "/d/caf\ufffdE9.txt"),
    ("/d/café.txt".encode(), "/d/café.txt"),  # valid UTF-8: unchanged
    (b"/d/\xff\xfe", "/d/\ufffdFF\ufffdFE"),
    ("/d/x\ufffdy".encode(), "/d/x\ufffd\ufffdy"),  # the escape character itself: doubled
    ("/d/\ufffdE9".encode(), "/d/\ufffd\ufffdE9"),  # looks like an escape; is not one
    (b"/d/\xef\xbf\xbd\xe9", "/d/\ufffd\ufffd\ufffdE9"),
    (b"/d/a#b.md", "/d/a#b.md"),
])
def test_source_encoding_is_lossless_and_utf8(raw, stored):
    path = os.fsdecode(raw)
    assert encode_source(path) == stored
    assert os.fsencode(decode_source(stored)) == raw
    stored.encode("utf-8")  # no surrogate
    display(path).encode("utf-8")
    assert display_source(stored) == raw.decode("utf-8", "replace")


def test_lone_surrogates_in_jsonl_are_replaced(tmp_path):
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "k\\ud800", "title": "t\\udce9", "text": "body \\udfff words"}\n')
    (doc,) = load_paths([tmp_path]).documents
    assert (doc.doc_id, doc.title, doc.text) == ("k\ufffd", "t\ufffd", "body \ufffd words")
    assert doc.source.endswith("corpus.jsonl#k\ufffd")
    assert scrub("a\ud800b") == "a\ufffdb"


def test_empty_jsonl_is_reported(tmp_path):
    (tmp_path / "blank.jsonl").write_text("\n\n")
    (tmp_path / "textless.jsonl").write_text('{"_id": "a", "text": " "}\n')
    (tmp_path / "ok.txt").write_text("fine")
    loaded = load_paths([tmp_path])
    assert reasons(loaded) == {"blank.jsonl": "no line has text",
                               "textless.jsonl": "no line has text"}


def test_prune_and_remove_map_real_paths_to_stored_sources(tmp_path):
    from ingest.pipeline import ingest_paths, remove_paths
    from ingest.store import Store

    docs = tmp_path / "docs"
    (docs / b"d\xe9".decode("utf-8", "surrogateescape")).mkdir(parents=True)
    bad = os.fsencode(docs) + b"/d\xe9/n\xf6tes.txt"
    hashed = docs / "notes#1.md"  # a "#" in a file name is not an item separator
    with open(bad, "wb") as f:
        f.write(b"latin name words")
    hashed.write_text("hash words")
    (docs / "keep.txt").write_text("kept words")
    with Store.open(tmp_path / "st", create=True) as store:
        first = ingest_paths(store, [docs], progress=False, prune=True)
        assert (first.new, first.skipped) == (3, [])
        again = ingest_paths(store, [docs], progress=False, prune=True)
        assert (again.new, again.changed, again.removed, again.unchanged) == (0, 0, 0, 3)

        os.unlink(bad)
        pruned = ingest_paths(store, [docs], progress=False, prune=True)
        assert (pruned.removed, pruned.unchanged) == (1, 2)

        assert remove_paths(store, [hashed]) == [str(hashed)]
        assert set(store.documents()) == {str(docs / "keep.txt")}


def test_remove_accepts_the_source_as_json_prints_it(tmp_path):
    from ingest.pipeline import ingest_paths, remove_paths
    from ingest.store import Store

    with open(os.fsencode(tmp_path) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"coffee words")
    with Store.open(tmp_path / "st", create=True) as store:
        ingest_paths(store, [tmp_path], progress=False)
        (source,) = store.documents()
        assert remove_paths(store, [Path(source)]) == [source]


# -- progress while discovering and reading -----------------------------------


def test_discovery_and_reading_show_progress(tmp_path, monkeypatch):
    import tqdm

    bars = []
    real = tqdm.tqdm

    class Recorder(real):
        def __init__(self, *args, **kwargs):
            bars.append(kwargs.get("desc"))
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm, "tqdm", Recorder)
    (tmp_path / "a.txt").write_text("words")
    load_paths([tmp_path], progress=True)
    assert bars == ["discovering", "reading"]


# -- found by tests/test_ingest_fuzz.py ------------------------------------------


@pytest.mark.parametrize("front,note", [
    ("d: 0000-01-01", "year 0 is out of range"),
    ("d: 2024-13-45", "month must be in 1..12"),
    ("t: 2024-01-01 25:00:00", "hour must be in 0..23"),
    ("[" * 1200, "maximum recursion depth"),
    ('x: "\\ud800"', None),  # a lone surrogate value: stored as U+FFFD
    ("n: " + "9" * 400, None),  # past a float: kept as text, no number
])
def test_front_matter_that_broke_the_batch(tmp_path, front, note):
    from ingest.pipeline import ingest_paths
    from ingest.store import Store

    (tmp_path / "a.md").write_text(f"---\n{front}\n---\nbody words\n")
    with Store.open(tmp_path / "st", create=True) as store:
        report = ingest_paths(store, [tmp_path], progress=False)
    assert (report.new, report.skipped) == (1, [])
    if note:
        assert note in report.notes[0] and "front matter is not valid YAML" in report.notes[0]


def test_remove_of_a_link_loop_path_is_one_line(tmp_path):
    from ingest.pipeline import remove_paths
    from ingest.store import Store

    os.symlink("self.md", tmp_path / "self.md")
    with Store.open(tmp_path / "st", create=True) as store:
        assert remove_paths(store, [tmp_path / "self.md"]) == []


# -- found by tests/test_ingest_fuzz.py in retrieval, left to its owners -----------


def test_bm25_of_only_stop_words(tmp_path):
    """Found by the fuzzer: bm25s fails on an empty vocabulary; the index is empty."""
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    (tmp_path / "a.txt").write_text("the and of")
    with Store.open(tmp_path / "st", create=True) as store:
        ingest_and_index(store, [tmp_path / "a.txt"], ["bm25"], progress=False)
        from retrieval.methods import open_searcher
        from retrieval.status import check_store

        assert check_store(store).consistent
        assert open_searcher(store, "bm25").search(["the and of"], 3) == [[]]
