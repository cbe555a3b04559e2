"""Answers you can check: extractive answers, abstention, --strict, and `eval answers`."""

from __future__ import annotations

import json

import pytest

from core.errors import RagminiError
from eval.answers import load_qa_dataset, load_question_file, token_f1
from tests.conftest import REPO, make_hit
from tests.test_cli import run_cli

ANSWERS = REPO / "corpus" / "answers.jsonl"


def test_token_f1_by_hand():
    # answer tokens: cat sat on mat (articles dropped); reference: cat sat
    assert token_f1("The cat sat on the mat [1].", "a cat sat") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("", "anything") == 0.0
    assert token_f1("Dogs bark.", "Cats purr.") == 0.0


def test_bundled_question_set_is_well_formed():
    every = load_question_file(ANSWERS, "all")
    assert len(every) >= 40
    unanswerable = [q for q in every if q.reference is None]
    assert len(unanswerable) >= 10 and all(not q.relevant for q in unanswerable)
    docs = {p.name for p in (REPO / "corpus" / "docs").iterdir()}
    rss_items = {"notes-matryoshka", "notes-colbert", "notes-benchmarks"}
    assert all(d in docs | rss_items for q in every for d in q.relevant)
    dev, test = load_question_file(ANSWERS, "dev"), load_question_file(ANSWERS, "test")
    assert len(dev) + len(test) == len(every) and dev and test


@pytest.mark.parametrize("content,message", [
    ("", "holds no questions"),
    ('{"id": "q1", "text": "x", "relevant": ["a.md"], "answer": null}\n', "null answer"),
    ('{"id": "q1", "text": "x", "relevant": []}\n', '"answer" must be'),
    ('not json\n', "not valid JSON"),
])
def test_bad_question_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "answers.jsonl"
    path.write_text(content)
    with pytest.raises(RagminiError, match=message) as exc:
        load_question_file(path, "all")
    assert str(path) in str(exc.value)


def _qa_folder(tmp_path, answers: str, qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\n"):
    folder = tmp_path / "qa"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "Tides rise."}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "Why do tides rise?"}\n'
                                          '{"_id": "q2", "text": "What is lava?"}\n')
    (folder / "qrels" / "test.tsv").write_text(qrels)
    (folder / "answers.jsonl").write_text(answers)
    return folder


@pytest.mark.parametrize("answers,message", [
    ("", "holds no questions"),
    ('{"_id": "q9", "answer": "x"}\n', "'q9' is not in queries.jsonl"),
    ('{"_id": "q1", "answer": null}\n', "null answer but qrels"),
])
def test_bad_qa_datasets_name_file_and_line(tmp_path, capsys, answers, message):
    folder = _qa_folder(tmp_path, answers)
    code, _, err = run_cli(capsys, "eval", "answers", "--dataset", str(folder), "--generators",
                           "extractive", "--no-progress")
    assert code == 1 and message in err and "answers.jsonl" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_qa_dataset_reads_answers_and_qrels(tmp_path):
    folder = _qa_folder(tmp_path, '{"_id": "q1", "answer": "The moon."}\n'
                                  '{"_id": "q2", "answer": null}\n')
    questions = load_qa_dataset(folder, "test")
    assert [(q.qid, q.reference, set(q.relevant)) for q in questions] == [
        ("q1", "The moon.", {"d1"}), ("q2", None, set())]


@pytest.mark.slow
def test_extractive_answer_is_cited_and_supported(corpus_store, sbert):
    from generation.answer import answer
    from generation.models import load_generator
    from tests.conftest import dense_search

    hits = dense_search(corpus_store, "sbert", sbert, "What is product quantization?", k=3)
    result = answer("What is product quantization?", hits, load_generator("extractive"),
                    embed=sbert.embed)
    assert result.citations and not result.invalid_citations
    assert "quantization" in result.answer.lower()
    # Every sentence is a source sentence, so every one is supported by what it cites.
    assert result.sentences and result.support_rate == 1.0
    for s in result.sentences:
        assert s.support.source_id in s.citations


@pytest.mark.slow
def test_strict_drops_unsupported_and_falls_back_to_extractive(tiny_gpt2_dir, sbert):
    from generation.answer import Sampling, answer
    from generation.models import load_generator

    hits = [make_hit(1, 0.9, 1, "tide.txt", "tide.txt", "Tides",
                     "Tides rise and fall twice a day because the moon pulls on the oceans.")]
    # A random-weight GPT-2 writes nothing the source supports.
    gen = load_generator(str(tiny_gpt2_dir), fallback=False)
    loose = answer("Why do tides rise?", hits, gen, Sampling(max_new_tokens=24), embed=sbert.embed)
    assert all(s.support.label != "supported" for s in loose.sentences)
    strict = answer("Why do tides rise?", hits, gen, Sampling(max_new_tokens=24),
                    embed=sbert.embed, strict=True)
    assert "extractive" in strict.generator and any("extractive" in n for n in strict.notes)
    assert strict.answer.startswith("Tides rise and fall") and strict.citations == [1]
    assert strict.support_rate == 1.0


@pytest.mark.slow
def test_ask_abstains_off_topic_and_answers_on_topic(store_copy, capsys):
    # The conftest store has glove and sbert; abstention also wants bm25.
    run_cli(capsys, "ingest", str(REPO / "corpus" / "docs"), "--store", str(store_copy),
            "--methods", "bm25", "--no-progress")
    code, out, err = run_cli(capsys, "ask", "Who won the 2022 football World Cup?", "--store",
                             str(store_copy), "--generator", "extractive", "--json")
    body = json.loads(out)
    assert code == 0 and body["abstained"] is True
    assert body["answer"] == "The documents do not answer this."
    assert body["abstain_score"] < body["abstain_threshold"] and body["sources"]
    code, out, _ = run_cli(capsys, "ask", "Who won the 2022 football World Cup?", "--store",
                           str(store_copy), "--generator", "extractive", "--json",
                           "--no-abstain")
    assert json.loads(out)["abstained"] is False
    code, out, _ = run_cli(capsys, "ask", "How does BM25 saturate term frequency?", "--store",
                           str(store_copy), "--generator", "extractive", "--json")
    body = json.loads(out)
    assert body["abstained"] is False and body["abstain_score"] >= body["abstain_threshold"]
    assert {"text", "citations", "support"} <= set(body["sentences"][0])
    assert body["support_rate"] == 1.0 and "bm25.md" in {s["doc_id"] for s in body["sources"]}
    code, out, _ = run_cli(capsys, "ask", "How does BM25 saturate term frequency?", "--store",
                           str(store_copy), "--generator", "extractive")
    assert "sentences supported by [" in out and "Sources:" in out


@pytest.mark.slow
def test_eval_answers_on_the_bundled_set(store_copy, capsys, tmp_path):
    run_cli(capsys, "ingest", str(REPO / "corpus" / "docs"), "--store", str(store_copy),
            "--methods", "bm25", "--no-progress")
    code, out, err = run_cli(capsys, "eval", "answers", "--store", str(store_copy),
                             "--generators", "extractive", "--json", "--report",
                             str(tmp_path / "report"))
    assert code == 0, err
    body = json.loads(out)
    assert body["split"] == "test" and body["n_questions"] >= 30 and body["n_unanswerable"] >= 5
    m = body["generators"]["extractive"]
    # Extractive answers cite only what they were given, and say only what the sources say.
    assert m["citation_validity"] == 1.0 and m["support_rate"] >= 0.95
    assert m["citation_hit"] >= 0.7 and 0 < m["token_f1"] < 1
    assert (tmp_path / "report" / "report.md").is_file()
