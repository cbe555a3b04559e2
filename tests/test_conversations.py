"""`eval conversations` on a tiny BM25 corpus worked out by hand, the file checks,
the follow-up set builder, and the committed conversations."""

from __future__ import annotations

import json

import pytest

from core.errors import RagminiError
from eval.conversations import FOLLOWUPS, build_followups, load_conversations
from tests.test_cli import run_cli

DOCS = {
    "tar-create": "tar creates an archive file from a directory with the -c option.",
    "tar-list": "tar lists the contents of an archive with the -t option.",
    "zip": "zip compresses files into a zip file.",
    "grep": "grep searches files for lines matching a pattern.",
    "grep-case": "The -i option makes grep ignore case when matching.",
}
CONVERSATIONS = [
    {"_id": "c1", "turns": [
        {"question": "How do I create a tar archive?", "relevant": ["tar-create"]},
        {"question": "How do I see what is inside it?", "relevant": ["tar-list"]}],
     "rewrite": "How do I list the contents of a tar archive?", "split": "test"},
    {"_id": "c2", "turns": [
        {"question": "What does grep search for?", "relevant": ["grep"]},
        {"question": "How do I make it ignore case?", "relevant": ["grep-case"]}],
     "rewrite": "How do I make grep ignore case?", "split": "test"},
    {"_id": "c3", "turns": [
        {"question": "How do I compress files with zip?", "relevant": ["zip"]},
        {"question": "And what does grep match?", "relevant": ["grep"]}],
     "split": "dev"},
]


def _folder(tmp_path, conversations=CONVERSATIONS):
    folder = tmp_path / "convs"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": d, "text": t}) + "\n" for d, t in DOCS.items()))
    (folder / "conversations.jsonl").write_text("".join(json.dumps(c) + "\n"
                                                        for c in conversations))
    return folder


def test_eval_conversations_by_hand(tmp_path, capsys):
    folder = _folder(tmp_path)
    code, out, err = run_cli(capsys, "eval", "conversations", "--dataset", str(folder),
                             "--methods", "bm25", "--no-progress", "--json",
                             "--resamples", "200")
    assert code == 0, err
    body = json.loads(out)
    assert body["n_conversations"] == 2 and body["split"] == "test"
    assert body["method"] == "bm25" and body["rewriter"] == "rule"
    v = body["variants"]
    assert set(v) == {"alone", "history", "rewrite"}
    # c1 alone: "see what is inside it" matches no document; c2 alone finds grep-case first.
    assert v["alone"] == {"recall@5": 0.5, "recall@10": 0.5, "mrr@10": 0.5}
    # With the history, c1 searches "... create tar archive": both tar pages, the one
    # that creates first (it holds all three carried terms); c2 still finds grep-case.
    assert v["history"] == {"recall@5": 1.0, "recall@10": 1.0, "mrr@10": 0.75}
    assert v["rewrite"] == {"recall@5": 1.0, "recall@10": 1.0, "mrr@10": 1.0}
    pairs = {(c["a"], c["b"], c["metric"]) for c in body["comparisons"]}
    assert ("alone", "history", "mrr@10") in pairs and ("history", "rewrite", "recall@5") in pairs
    assert set(body["methods"]) == {"bm25"}
    # The table for people.
    code, out, _ = run_cli(capsys, "eval", "conversations", "--dataset", str(folder),
                           "--methods", "bm25", "--no-progress", "--resamples", "200")
    assert code == 0 and "history" in out and "paired tests" in out


def test_without_rewrites_only_two_variants(tmp_path, capsys):
    folder = _folder(tmp_path)
    code, out, err = run_cli(capsys, "eval", "conversations", "--dataset", str(folder),
                             "--methods", "bm25", "--split", "dev", "--json", "--no-progress",
                             "--resamples", "200")
    assert code == 0, err
    body = json.loads(out)
    assert body["n_conversations"] == 1 and set(body["variants"]) == {"alone", "history"}


@pytest.mark.parametrize("line,message", [
    ("not json", "not valid JSON"),
    ('{"_id": "x", "turns": [{"question": "q", "relevant": ["a"]}]}', "at least two"),
    ('{"_id": "x", "turns": [{"question": "q", "relevant": ["a"]}, {"question": "r"}]}',
     "names no relevant document"),
    ('{"_id": "x", "turns": [{"question": "q", "relevant": "a"}, {"question": "r"}]}',
     'each turn needs a "question" and a "relevant" list'),
    ('{"_id": "x", "turns": [{"question": "q", "relevant": []}, '
     '{"question": "r", "relevant": []}]}', "names no relevant document"),
    ('{"_id": "x", "turns": [{"question": "q", "relevant": ["a"]}, '
     '{"question": "r", "relevant": ["b"]}], "rewrite": ""}', '"rewrite" must be'),
])
def test_bad_conversation_files_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "conversations.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(RagminiError, match=message) as exc:
        load_conversations(path)
    assert f"{path}:1" in str(exc.value)


def test_a_missing_corpus_is_one_line(tmp_path, capsys):
    folder = _folder(tmp_path)
    (folder / "corpus.jsonl").unlink()
    code, _, err = run_cli(capsys, "eval", "conversations", "--dataset", str(folder),
                           "--no-progress")
    assert code == 1 and "corpus.jsonl is missing" in err and len(err.strip().splitlines()) == 1


def test_committed_followups_are_well_formed():
    every = load_conversations(FOLLOWUPS, "all")
    assert len(every) >= 50 and all(c.rewrite and len(c.turns) == 2 for c in every)
    dev, test = load_conversations(FOLLOWUPS, "dev"), load_conversations(FOLLOWUPS, "test")
    assert len(dev) + len(test) == len(every) and len(dev) >= 20 and len(test) >= 20
    faq = [c for c in every if any(d.startswith(("zshfaq", "gitfaq")) for d in
                                   c.turns[-1].relevant)]
    assert 15 <= len(faq) < len(every)
    # Most follow-ups need another document than the first turn's; some stay on it.
    same = sum(bool(c.turns[0].relevant & c.turns[1].relevant) for c in every)
    assert 5 <= same <= len(every) // 3


def test_build_followups_from_faq_and_man_pages(tmp_path):
    faq, man = tmp_path / "faq", tmp_path / "man"
    faq.mkdir()
    man.mkdir()
    (faq / "corpus.jsonl").write_text(json.dumps({"_id": "zshfaq-1.2", "title": "t",
                                                  "text": "zsh"}) + "\n")
    (man / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": i, "text": i}) + "\n"
                                              for i in ("tar.1", "open.2", "openssl-req.1ssl")))
    conversations = tmp_path / "c.jsonl"
    conversations.write_text(json.dumps({"_id": "c9", "turns": [
        {"question": "What is zsh?", "relevant": ["zshfaq-1.2"]},
        {"question": "And tar?", "relevant": ["tar.1"]}], "rewrite": "What is tar?",
        "split": "dev"}) + "\n")
    out = tmp_path / "out"
    meta = build_followups(out, faq, man, conversations=conversations)
    ids = [json.loads(line)["_id"] for line in (out / "corpus.jsonl").read_text().splitlines()]
    assert ids == ["zshfaq-1.2", "tar.1", "openssl-req.1ssl"]  # section 2 left out
    assert meta["documents"] == 3 and meta["faq_documents"] == 1
    assert (out / "qrels" / "dev.tsv").read_text() == "query-id\tcorpus-id\tscore\nc9\ttar.1\t1\n"
    assert json.loads((out / "queries.jsonl").read_text())["text"] == "What is tar?"
    assert load_conversations(out / "conversations.jsonl", "dev")[0].rewrite == "What is tar?"
    # A conversation naming a document the corpus lacks is refused.
    conversations.write_text(conversations.read_text().replace("tar.1", "gone.1"))
    with pytest.raises(RagminiError, match="gone.1"):
        build_followups(out, faq, man, conversations=conversations)
