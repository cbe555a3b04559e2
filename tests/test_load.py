"""Loading and cleaning: every supported format, and bad files that lose nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ingest.clean import decode_bytes, html_main_text, normalize_text
from ingest.load import load_paths

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>First</title><guid>item-1</guid><description><![CDATA[<p>Alpha <b>bravo</b></p><script>evil()</script>]]></description></item>
<item><title>Second</title><guid>item-2</guid><description>Charlie delta</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>a</title>
<entry><title>Atom one</title><id>urn:a1</id><content type="html">&lt;p&gt;Echo foxtrot&lt;/p&gt;</content></entry></feed>"""


def test_text_markdown_and_titles(tmp_path):
    (tmp_path / "a.md").write_text("# Heading here\n\nBody text.\n")
    (tmp_path / "b.txt").write_text("Short title\n\nThe body follows.\n")
    (tmp_path / "c.txt").write_text("no title line here because it runs on\nand on.\n")
    docs = {d.doc_id: d for d in load_paths([tmp_path]).documents}
    assert docs["a.md"].title == "Heading here"
    assert docs["b.txt"].title == "Short title"
    assert docs["c.txt"].title == "c"
    assert docs["b.txt"].source == str((tmp_path / "b.txt").resolve())


def test_html_drops_boilerplate_keeps_title(tmp_path):
    (tmp_path / "p.html").write_text(
        "<html><head><title>Page T</title><style>p{color:red}</style>"
        "<script>var tracking = 1;</script></head><body><nav>Home | About</nav>"
        "<h1>Main heading</h1><p>The real content sentence.</p><footer>Copyright</footer>"
        "</body></html>"
    )
    (doc,) = load_paths([tmp_path]).documents
    assert doc.title == "Page T"
    assert "The real content sentence." in doc.text
    for junk in ("tracking", "color:red", "Home | About", "Copyright"):
        assert junk not in doc.text


def test_feeds_give_one_document_per_item(tmp_path):
    (tmp_path / "f.rss").write_text(RSS)
    (tmp_path / "g.atom").write_text(ATOM)
    docs = {d.doc_id: d for d in load_paths([tmp_path]).documents}
    assert set(docs) == {"item-1", "item-2", "urn:a1"}
    assert docs["item-1"].text == "Alpha\nbravo" or docs["item-1"].text == "Alpha bravo"
    assert "evil" not in docs["item-1"].text
    assert docs["urn:a1"].title == "Atom one" and docs["urn:a1"].text == "Echo foxtrot"
    assert docs["item-2"].source.endswith("f.rss#item-2")


def test_beir_jsonl(tmp_path):
    rows = [{"_id": "d1", "title": "T1", "text": "one"}, {"id": "d2", "text": "two"},
            {"_id": "d3", "title": "empty", "text": "   "}]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = load_paths([tmp_path]).documents
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("d1", "T1", "one"), ("d2", "", "two")]


def test_decode_fallback_and_normalize():
    assert decode_bytes("café".encode()) == ("café", None)
    assert decode_bytes("\ufeffbom".encode()) == ("bom", None)
    assert decode_bytes("café".encode("cp1252")) == ("café", "cp1252")
    assert normalize_text("a\r\n\r\n\r\n\r\nb\t\tc\x07") == "a\n\nb c"


# (file name, bytes, expected reason fragment): each is skipped with one line
# while the good file beside it is still loaded.
BAD_FILES = [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b"  \n\t\n  ", "empty file"),
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("scripts.html", b"<html><script>x()</script><style>p{}</style></html>", "no visible text"),
    ("broken.rss", b"<?xml version='1.0'?><rss><channel><item><title>x", "no item with text"),
    ("empty.atom", b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'></feed>",
     "malformed or empty feed"),
    ("bad.jsonl", b'{"_id": "a", "text": "ok"}\n{not json\n', "line 2 is not JSON"),
    ("noid.jsonl", b'{"text": "no id"}\n', "no _id or id"),
]


@pytest.mark.parametrize("name,data,reason", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_skipped_with_reason(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    (tmp_path / "good.txt").write_text("Good content survives.")
    loaded = load_paths([tmp_path])
    assert [d.doc_id for d in loaded.documents] == ["good.txt"]
    assert len(loaded.skipped) == 1 and reason in loaded.skipped[0].reason


def test_malformed_feed_keeps_recoverable_items_and_says_so(tmp_path):
    (tmp_path / "half.rss").write_text(
        "<?xml version='1.0'?><rss><channel><item><title>ok</title><guid>g1</guid>"
        "<description>Recovered text &amp; more</description></item><item><title>cut"
    )
    (doc,) = load_paths([tmp_path]).documents
    assert doc.doc_id == "g1" and doc.text == "Recovered text & more"
    assert any("malformed feed" in n and "1 item(s) recovered" in n for n in doc.notes)


def test_non_utf8_is_decoded_and_noted(tmp_path):
    (tmp_path / "latin.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (doc,) = load_paths([tmp_path]).documents
    assert doc.text == "Café crème"
    assert doc.notes == ("not valid UTF-8; decoded as cp1252",)


def test_oversized_file_is_refused_with_limit(tmp_path):
    (tmp_path / "big.txt").write_bytes(b"word " * 300_000)  # 1.5 MB
    loaded = load_paths([tmp_path], max_bytes=1024 * 1024)
    assert not loaded.documents
    assert "over the 1 MiB limit" in loaded.skipped[0].reason


def test_missing_path_and_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the folder")
    root = tmp_path / "root"
    root.mkdir()
    (root / "real.txt").write_text("inside")
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(root, root / "loop")  # a directory link back to itself
    loaded = load_paths([root, tmp_path / "nope"])
    assert [d.doc_id for d in loaded.documents] == ["real.txt"]
    reasons = {os.path.basename(s.path): s.reason for s in loaded.skipped}
    assert reasons["nope"] == "no such file or directory"
    assert "symbolic link not followed" in reasons["link.txt"]


def test_unreadable_file(tmp_path):
    f = tmp_path / "locked.txt"
    f.write_text("secret")
    f.chmod(0)
    if os.geteuid() != 0:
        assert load_paths([tmp_path]).skipped[0].reason == "permission denied"
        return
    # Root reads any file; without the two capabilities that let it, it is
    # refused like anyone else (util-linux setpriv drops them for one process).
    import subprocess
    import sys

    code = ("import sys; from ingest.load import load_paths; "
            "print(load_paths([sys.argv[1]]).skipped[0].reason)")
    out = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--",
                          sys.executable, "-c", code, str(tmp_path)],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "permission denied"


def test_html_main_text_on_malformed_markup():
    title, text = html_main_text("<p>Unclosed <b>bold <div>and a div</p></span>")
    assert title == ""
    assert "Unclosed" in text and "and a div" in text
