"""The FAQ QA-dataset builder: reflowing and parsing by hand, and a real small build."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from eval.faqs import parse_gitfaq, parse_zsh_faq, pick_unanswerable, reflow, split_of

ZSH_FAQ = """\
Contents:
Chapter 2:  How does zsh differ from...?
2.1. sh and ksh?
2.2. Why do my csh aliases not work?
--- End of Contents ---

Chapter 2: How does zsh differ from...?

2.1: Differences from sh and ksh

Most features of ksh are
  implemented in zsh.

2.2: Why do my csh aliases not work?

Because
  of

    alias l='ls -l'
  
  and so on.

Acknowledgments:

Thanks to everyone.
"""


def test_reflow_joins_prose_and_keeps_code_lines():
    lines = ["First line", "  goes on.", "  ", "    code one", "      code two", "",
             "o  item", "     hangs on", "  o  next item"]
    assert reflow(lines, prose_indent=2) == (
        "First line goes on.\n\n    code one\n      code two\n\no item hangs on\no next item")
    assert reflow(["see git-", "config(1)"], prose_indent=0) == "see git-config(1)"


def test_parse_zsh_faq_completes_chapter_two_and_drops_contents_and_trailer():
    questions = {q.qid: q for q in parse_zsh_faq(ZSH_FAQ)}
    assert list(questions) == ["zshfaq-2.1", "zshfaq-2.2"]
    first, second = questions["zshfaq-2.1"], questions["zshfaq-2.2"]
    assert first.text == "How does zsh differ from sh and ksh?"
    assert first.heading == "Differences from sh and ksh"
    assert first.answer == "Most features of ksh are implemented in zsh."
    assert first.chapter.endswith("Chapter 2: How does zsh differ from...?")
    assert second.text == "Why do my csh aliases not work?"
    assert second.answer == "Because of\n\n    alias l='ls -l'\n\nand so on."
    assert "Thanks" not in second.answer


def test_parse_gitfaq_reads_wrapped_headings():
    rendered = ("GITFAQ(7)        Git Manual        GITFAQ(7)\n\nNAME\n       gitfaq - FAQ\n\n"
                "COMMON ISSUES\n       How do I change a commit I made a\n       moment ago?\n"
                "           Use git commit\n           --amend.\n\n"
                "               $ git commit --amend\n\n"
                "GIT\n       Part of the git(1) suite\n\nGit 2.39   10/07/2025   GITFAQ(7)\n")
    [question] = parse_gitfaq(rendered)
    assert question.qid == "gitfaq-1.1"
    assert question.text == "How do I change a commit I made a moment ago?"
    assert question.chapter.endswith("Common issues")
    assert question.answer == "Use git commit --amend.\n\n    $ git commit --amend"


def test_splits_and_unanswerable_pick_are_stable_and_balanced():
    ids = [f"zshfaq-{i}.{j}" for i in range(1, 9) for j in range(1, 40)]
    share = sum(split_of(q) == "test" for q in ids) / len(ids)
    assert 0.43 < share < 0.57
    picked = pick_unanswerable(ids, 25, seed=0)
    assert picked == pick_unanswerable(list(reversed(ids)), 25, seed=0)
    assert picked != pick_unanswerable(ids, 25, seed=1)
    for split in ("dev", "test"):
        members = [q for q in ids if split_of(q) == split]
        assert abs(sum(q in picked for q in members) - 0.25 * len(members)) <= 1
    assert pick_unanswerable(ids, 0, seed=0) == set()


def _jsonl(path):
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def _qrels(path):
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["query-id", "corpus-id", "score"]
    return {(qid, doc) for qid, doc, score in rows[1:] if score == "1"}


@pytest.mark.slow
def test_build_a_small_real_dataset(tmp_path):
    from eval.faqs import build

    if shutil.which("apt-get") is None:  # a clear failure, never a silent skip
        pytest.fail("this test downloads Debian packages and needs apt-get: run it on Debian")
    out = tmp_path / "faqs"
    meta = build(out, work=tmp_path / "work", update=False, progress=False, limit=8)
    assert set(meta["sources"]) == {"zshfaq", "gitfaq"}
    assert meta["sources"]["zshfaq"]["package"] == "zsh-common"
    assert meta["questions"] == 16 and meta["unanswerable"] >= 2
    assert json.loads((out / "metadata.json").read_text()) == meta

    corpus = {row["_id"]: row for row in _jsonl(out / "corpus.jsonl")}
    queries = {row["_id"]: row["text"] for row in _jsonl(out / "queries.jsonl")}
    answers = {row["_id"]: row["answer"] for row in _jsonl(out / "answers.jsonl")}
    assert set(answers) == set(queries)
    qrels = {split: _qrels(out / "qrels" / f"{split}.tsv") for split in ("dev", "test")}
    listed = {split: (out / "questions" / f"{split}.txt").read_text().split()
              for split in ("dev", "test")}
    assert sorted(listed["dev"] + listed["test"]) == sorted(queries)
    judged = {qid for split in qrels for qid, _ in qrels[split]}
    for split in ("dev", "test"):
        assert {qid for qid, _ in qrels[split]} <= set(listed[split])
        assert any(answers[qid] is None for qid in listed[split]), f"{split}: no unanswerable"
        assert all(doc in corpus for _, doc in qrels[split])
    for qid, answer in answers.items():
        if answer is None:
            assert qid not in judged and qid not in corpus
        else:
            assert qid in judged and corpus[qid]["text"] == answer
            document = f"{corpus[qid]['title']}\n{answer}".lower()
            assert queries[qid].lower() not in document

    # A question checked by hand in zsh-common 5.9's FAQ, and its answer.
    known = "zshfaq-1.7"
    assert queries[known] == "I don't have root access: how do I make zsh my login shell?"
    assert "/etc/shells" in answers[known] and "exec <zsh-path>" in answers[known]
    assert corpus[known]["title"].endswith("Chapter 1: Introducing zsh and how to install it")
