"""Sentence-level support marking: the splitter, the labels, and the calibration pairs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from core.errors import RagminiError
from generation.support import (
    DEFAULT_THRESHOLDS,
    LABELS,
    SentenceSupport,
    Support,
    score_answer,
    split_sentences,
    strip_citations,
    summary_line,
    support_rate,
)
from tests.conftest import CORPUS, REPO

PAIRS = REPO / "eval" / "data" / "support_pairs.jsonl"


# --- splitter ---------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    # abbreviations and decimals do not end a sentence
    ("BM25 uses b, e.g. 0.75, and k1 (i.e. about 1.2). It saturates.",
     ["BM25 uses b, e.g. 0.75, and k1 (i.e. about 1.2).", "It saturates."]),
    # citations after the full stop stay with their sentence
    ("BM25 saturates. [1] Length is normalised.[2][3] Done [4].",
     ["BM25 saturates. [1]", "Length is normalised.[2][3]", "Done [4]."]),
    # ... unless the next sentence starts with them
    ("[1] says BM25 is lexical. [2] says dense search finds synonyms.",
     ["[1] says BM25 is lexical.", "[2] says dense search finds synonyms."]),
    # headings are units of their own; list items start a sentence, bullets dropped
    ("# Ranking with BM25\n\nIt is lexical. It is fast.\n\n- First item\n- Second item wraps\n  onto a new line\n"
     "1. Numbered one.\n2) Numbered two",
     ["Ranking with BM25", "It is lexical.", "It is fast.", "First item", "Second item wraps onto a new line",
      "Numbered one.", "Numbered two"]),
    # inline enumerators, names with initials, et al., Fig. 3, lower-case continuations
    ("Steps: 1. Load it. 2. Run it. Work by J. Smith et al. 2019 shows it. See Fig. 3 for more. "
     "Costs rise approx. tenfold. Results vary, etc. The end!",
     ["Steps: 1. Load it.", "Run it.", "Work by J. Smith et al. 2019 shows it.", "See Fig. 3 for more.",
      "Costs rise approx. tenfold.", "Results vary, etc.", "The end!"]),
    # identifiers that start lower-case still start a sentence; ? and ! end one
    ("MRR is cut at 10, as in MRR@10. nDCG handles grades. Why? Because! Wrapped\nline joins.",
     ["MRR is cut at 10, as in MRR@10.", "nDCG handles grades.", "Why?", "Because!", "Wrapped line joins."]),
    ("", []),
    ("   \n\n ---\n", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_on_the_corpus_keeps_every_word():
    from ingest.load import load_paths

    for doc in load_paths([CORPUS]).documents:
        sentences = split_sentences(doc.text)
        assert sentences, doc.doc_id
        words = [w for w in doc.text.split() if not set(w) <= set("#-*")]
        joined = " ".join(sentences).split()
        assert len(joined) == len(words), doc.doc_id
        assert max(len(s.split()) for s in sentences) < 60, doc.doc_id


def test_strip_citations():
    assert strip_citations("BM25 saturates [1]. Length [2, 3] matters [4][5] .") == "BM25 saturates. Length matters."


# --- scoring with a stand-in encoder (no model) ----------------------------
class CountingEmbed:
    """Bag-of-words vectors over a fixed vocabulary; counts its calls."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in strip_citations(t).lower().split():
                out[i, hash(w.strip(".,")) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


SOURCES = [
    (1, "BM25 is the classic ranking function of lexical search. The parameter b, usually 0.75, sets length normalisation."),
    (2, "Temperature divides every logit by a number T before the softmax. Low temperature makes output focused."),
]


def test_one_embed_call_per_answer_and_short_sentences_skipped():
    embed = CountingEmbed()
    answer = "# Answer\n\nYes [1]. BM25 is the classic ranking function of lexical search [1]. Sure! " \
             "Temperature divides every logit by a number T [2]."
    marks = score_answer(answer, SOURCES, embed)
    assert len(embed.calls) == 1
    assert [m.text for m in marks] == ["BM25 is the classic ranking function of lexical search [1].",
                                      "Temperature divides every logit by a number T [2]."]
    assert [m.citations for m in marks] == [[1], [2]]
    assert [m.support.source_id for m in marks] == [1, 2]
    # citations are stripped before embedding, and texts are embedded once each
    assert not any("[" in t for t in embed.calls[0])
    assert len(embed.calls[0]) == len(set(embed.calls[0]))


def test_no_claims_means_no_embedding():
    embed = CountingEmbed()
    assert score_answer("Yes. [1]\n\n# Heading only", SOURCES, embed) == []
    assert embed.calls == []


def test_citing_a_source_with_no_sentences_is_unsupported():
    marks = score_answer("BM25 is the classic ranking function [3].", SOURCES + [(3, "")], CountingEmbed())
    assert marks[0].citations == [3]
    assert marks[0].support == Support("unsupported", 0.0, None, "")


@pytest.mark.parametrize("thresholds", [(0.8, 0.5), (-0.1, 0.5), (0.5, 1.5), ("a", 1), (0.5,)])
def test_bad_thresholds_are_user_errors(thresholds):
    with pytest.raises(RagminiError):
        score_answer("BM25 is lexical search here.", SOURCES, CountingEmbed(), thresholds=thresholds)


def test_duplicate_source_numbers_are_user_errors():
    with pytest.raises(RagminiError, match="distinct"):
        score_answer("BM25 is lexical search here.", [(1, "a b c"), (1, "d e f")], CountingEmbed())


def _mark(label, source_id):
    return SentenceSupport("x y z.", [], Support(label, 0.5, source_id, "s"))


def test_support_rate_and_summary_line():
    marks = [_mark("supported", 2), _mark("weak", 1), _mark("supported", 1), _mark("unsupported", None)]
    assert support_rate(marks) == 0.5
    assert summary_line(marks) == "2 of 4 sentences supported by [1], [2]"
    assert summary_line(marks[1:2]) == "0 of 1 sentence supported"
    assert support_rate([]) == 0.0
    assert summary_line([]) == "no sentences to check"


def test_to_dict_shape():
    mark = SentenceSupport("BM25 saturates [1].", [1], Support("weak", 0.61, 1, "It saturates."))
    assert mark.to_dict() == {
        "text": "BM25 saturates [1].",
        "citations": [1],
        "support": {"label": "weak", "score": 0.61, "source_id": 1, "source_sentence": "It saturates."},
    }
    json.dumps(mark.to_dict())


# --- the pairs file -----------------------------------------------------------
def test_pairs_file_is_built_by_the_builder_and_split_by_document():
    done = subprocess.run([sys.executable, str(REPO / "eval" / "support_pairs.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    assert len(pairs) >= 300
    kinds = {p["kind"] for p in pairs}
    assert kinds == {"copy", "paraphrase", "other_doc", "invented", "contradiction"}
    assert sum(p.get("style") == "smollm2" for p in pairs) >= 30
    assert all(p["label"] == (p["kind"] in ("copy", "paraphrase")) for p in pairs)
    parts = {}
    for p in pairs:
        parts.setdefault(p["doc_id"], set()).add(p["part"])
        assert 20 <= len(p["source"].split()) <= 210
    assert all(len(v) == 1 for v in parts.values())  # a document is in one part only
    test_docs = sum(v == {"test"} for v in parts.values())
    assert 0.25 <= test_docs / len(parts) <= 0.45


# --- the real packaged MiniLM ---------------------------------------------------
@pytest.fixture(scope="module")
def docs():
    from ingest.load import load_paths

    return {d.doc_id: d.text for d in load_paths([CORPUS]).documents}


@pytest.fixture(scope="module")
def three_sources(docs):
    return [(1, docs["bm25.md"]), (2, docs["temperature.md"]), (3, docs["faiss.md"])]


@pytest.mark.slow
def test_copied_sentence_is_supported_by_its_source(sbert, three_sources):
    answer = ("Temperature divides every logit by a number T before the softmax [2]. "
              "FAISS is a C++ library with Python bindings for searching and clustering dense vectors.")
    marks = score_answer(answer, three_sources, sbert.embed)
    assert [m.support.label for m in marks] == ["supported", "supported"]
    assert [m.support.source_id for m in marks] == [2, 3]
    assert marks[0].support.source_sentence.startswith("Temperature divides every logit")
    assert marks[1].citations == []  # uncited: searched in every source, found in [3]
    assert summary_line(marks) == "2 of 2 sentences supported by [2], [3]"


@pytest.mark.slow
def test_off_topic_and_invented_sentences_are_unsupported(sbert, three_sources):
    answer = ("The Eiffel Tower was completed in Paris in 1889 [1]. "
              "FAISS was written by Google engineers in Rust for mobile phones [3].")
    marks = score_answer(answer, three_sources, sbert.embed)
    assert [m.support.label for m in marks] == ["unsupported", "unsupported"]
    assert all(m.support.score < DEFAULT_THRESHOLDS[0] for m in marks)
    assert support_rate(marks) == 0.0


@pytest.mark.slow
def test_citations_restrict_the_sources_searched(sbert, three_sources):
    sentence = "Temperature divides every logit by a number T before the softmax"
    cited_right, cited_wrong, cited_unknown = score_answer(
        f"{sentence} [2]. {sentence} [1]. {sentence} [9].", three_sources, sbert.embed)
    assert (cited_right.support.label, cited_right.support.source_id) == ("supported", 2)
    # citing [1] searches only source 1 (BM25), which does not say it
    assert cited_wrong.citations == [1]
    assert cited_wrong.support.source_id == 1
    assert cited_wrong.support.label == "unsupported"
    # [9] names no source: ignored, so every source is searched
    assert cited_unknown.citations == []
    assert (cited_unknown.support.label, cited_unknown.support.source_id) == ("supported", 2)
    assert set(LABELS) >= {m.support.label for m in (cited_right, cited_wrong, cited_unknown)}


@pytest.mark.slow
def test_held_back_roc_auc_is_at_least_0_9(sbert):
    from sklearn.metrics import roc_auc_score

    pairs = [p for p in map(json.loads, PAIRS.read_text(encoding="utf-8").splitlines()) if p["part"] == "test"]
    assert len(pairs) >= 100
    cache: dict[str, np.ndarray] = {}

    def embed(texts):
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, sbert.embed(missing)))
        return np.stack([cache[t] for t in texts])

    # Warm the cache in one batch, then score each pair as the runtime does.
    from generation.support import source_units

    embed([strip_citations(p["sentence"]) for p in pairs]
          + [u.text for p in pairs for u in source_units([(1, p["source"])])])
    scores = [score_answer(p["sentence"], [(1, p["source"])], embed)[0].support.score for p in pairs]
    labels = [p["label"] for p in pairs]
    auc = roc_auc_score(labels, scores)
    print(f"held-back ROC AUC {auc:.3f} on {len(pairs)} pairs")
    assert auc >= 0.9
    # The committed calibration report says the same.
    report = json.loads((REPO / "bench" / "support_calibration.json").read_text(encoding="utf-8"))
    assert report["module"]["test_auc"] == pytest.approx(auc, abs=1e-3)
    assert tuple(report["module"]["thresholds"]) == DEFAULT_THRESHOLDS


# --- the fitted model, read from generation/support_model.json ----------------
def test_the_module_scores_with_the_model_file():
    from generation import support

    model = json.loads(support.MODEL_FILE.read_text(encoding="utf-8"))
    assert list(support.COEFFICIENTS) == model["coefficients"]
    assert support.INTERCEPT == model["intercept"]
    assert DEFAULT_THRESHOLDS == (model["thresholds"]["weak_at"], model["thresholds"]["supported_at"])
    # The calibration report was made with this file.
    report = json.loads((REPO / "bench" / "support_calibration.json").read_text(encoding="utf-8"))
    assert report["module"]["coefficients"] == model["coefficients"]
    assert report["module"]["intercept"] == model["intercept"]


@pytest.mark.parametrize("body, message", [
    (None, "missing or damaged"),
    ("{not json", "missing or damaged"),
    ({"features": ["cosine", "lexical", "specific_missing"], "coefficients": [1, 2, 3],
      "intercept": 0}, "missing or damaged"),
    ({"features": ["cosine", "lexical"], "coefficients": [1, 2], "intercept": 0,
      "thresholds": {"weak_at": 0.4, "supported_at": 0.8}}, "this ragmini computes"),
    ({"features": ["cosine", "lexical", "specific_missing"], "coefficients": [1, 2, 3],
      "intercept": 0, "thresholds": {"weak_at": 0.9, "supported_at": 0.8}}, "no calibration gives"),
])
def test_a_damaged_model_file_is_one_clear_error(tmp_path, body, message):
    from generation.support import load_model

    path = tmp_path / "support_model.json"
    if body is not None:
        path.write_text(body if isinstance(body, str) else json.dumps(body))
    with pytest.raises(RagminiError) as err:
        load_model(path)
    assert message in str(err.value) and "python -m bench.calibrate_support" in str(err.value)
