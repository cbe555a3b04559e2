"""The man-page benchmark builder: parsing by hand, and a real build of a few packages."""

from __future__ import annotations

import json
import shutil

import pytest

from eval.manpages import parse, split_of

RENDERED = """\
SED(1)                           User Commands                          SED(1)

NAME
       sed - stream editor for filtering and
       transforming text

SYNOPSIS
       sed [OPTION]... {script-only-if-no-other-script} [input-file]...

DESCRIPTION
       Sed is a stream editor.

GNU sed 4.9                       April 2026                            SED(1)
"""


def test_parse_removes_header_footer_and_name():
    page = parse(RENDERED, "sed.1", "sed")
    assert page.description == "stream editor for filtering and transforming text"
    assert page.title == "sed(1)"
    assert page.text.startswith("SYNOPSIS") and "Sed is a stream editor." in page.text
    for gone in ("NAME", "SED(1)", "GNU sed 4.9", "filtering and"):
        assert gone not in page.text
    assert parse("X(1)\n\nSYNOPSIS\n  x\n\nfooter\n", "x.1", "x") is None  # no NAME


def test_split_is_stable_and_about_thirty_percent():
    assert split_of("cp.1") == split_of("cp.1")
    names = [f"page{i}.1" for i in range(2000)]
    share = sum(split_of(n) == "test" for n in names) / len(names)
    assert 0.26 < share < 0.34


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("man") is None,
                    reason="needs Debian's apt-get and man")
def test_build_a_few_real_packages_and_evaluate(tmp_path, capsys):
    from eval.manpages import build
    from tests.test_cli import run_cli

    out = tmp_path / "mp"
    meta = build(out, ("sed", "grep", "tar"), update=False, progress=False)
    assert set(meta["packages"]) == {"sed", "grep", "tar"}
    corpus = {json.loads(l)["_id"]: json.loads(l) for l in (out / "corpus.jsonl").open()}
    assert {"sed.1", "grep.1", "tar.1"} <= set(corpus)
    assert corpus["sed.1"]["title"] == "sed(1)"
    assert "stream editor for filtering" not in corpus["sed.1"]["text"]
    queries = [json.loads(l) for l in (out / "queries.jsonl").open()]
    sed_q = next(q for q in queries if q["metadata"]["pages"] == ["sed.1"])
    assert sed_q["text"] == "stream editor for filtering and transforming text"
    split = sed_q["metadata"]["split"]
    assert f"{sed_q['_id']}\tsed.1\t1" in (out / "qrels" / f"{split}.tsv").read_text()
    code, output, err = run_cli(capsys, "eval", "--dataset", str(out), "--split", split,
                                "--methods", "bm25", "--json", "--no-progress")
    assert code == 0, err
    assert 0.0 <= json.loads(output)["methods"]["bm25"]["recall@1"] <= 1.0
