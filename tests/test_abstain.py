"""The abstention signals, checked by hand on made-up hits and a keyword embedder,
the model file the calibration writes, and its report against the top-1 baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.errors import RagminiError
from generation.abstain import (
    MODEL_FILE,
    SIGNALS,
    Evidence,
    Model,
    content_words,
    coverage,
    decide,
    evidence,
    load_model,
    probability,
)
from tests.conftest import REPO, keyword_vectors, make_hit

KEYWORDS = ("tide", "moon", "bread", "oven")


class KeywordEmbed:
    """One dimension per keyword the text contains (plus one for "none"), unit norm;
    records its calls."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return keyword_vectors(texts, KEYWORDS)


QUESTION = "Why do tides follow the moon?"  # embeds as (1, 1, 0, 0, 0) / sqrt(2)


def hits():
    texts = [
        # Sentences: tide only (cos 1/sqrt2), moon only (1/sqrt2), and "Moon and tides."
        # (cos 1) which is under 4 words and so not compared.
        "Tides rise twice a day. The moon pulls the oceans into bulges. Moon and tides.",
        "Bread needs a hot oven to rise well.",
        "Sourdough bread keeps for days in a tin.",
        "An oven thermometer reads the real heat.",
        "Flour and water make a simple starter dough.",
        # Rank 6: a perfect sentence, beyond the default depth of 5 passages.
        "The tides follow the moon around the earth.",
    ]
    scores = [0.5, 0.45, 0.4, 0.35, 0.3, 0.25]
    return [make_hit(i + 1, s, 100 + i, f"doc{i}.md", f"doc{i}.md", f"Doc {i}", t)
            for i, (s, t) in enumerate(zip(scores, texts))]


def test_content_words_drop_stopwords_and_crudely_stem():
    assert content_words(QUESTION) == {"tide", "follow", "moon"}
    assert content_words("Completing the completions") == {"complet", "completion"}


def test_coverage_compares_five_letter_prefixes():
    # completion / completing share "compl"; work and words do not share "work".
    assert coverage("How does completion work?", "Completing words") == 0.5
    assert coverage(QUESTION, hits()[0].text) == pytest.approx(2 / 3)  # tide, moon; not follow
    assert coverage(QUESTION, "The tides follow the moon.") == 1.0
    assert coverage("What is it?", "Anything at all") == 0.0  # no content word asked


def test_evidence_by_hand():
    embed = KeywordEmbed()
    ev = evidence(QUESTION, hits(), None, embed)
    half = 1 / math.sqrt(2)
    assert set(ev.values) == set(SIGNALS)
    assert ev.top == 0.5
    assert ev.sentence == pytest.approx(half, abs=1e-6)
    assert ev.coverage == pytest.approx(2 / 3)
    assert ev.focus == pytest.approx(half - 0.5, abs=1e-6)
    assert ev.bm25_per_word == 0.0 and ev.agreement == 0.0  # no BM25 ranking given
    # The first embed call: the question, then the 4+ word sentences of the top 5 passages.
    texts = embed.calls[0]
    assert texts[0] == QUESTION
    assert "Moon and tides." not in texts
    assert "The tides follow the moon around the earth." not in texts
    assert "Bread needs a hot oven to rise well." in texts and len(texts) == 1 + 6
    # The extractive answer of the top 3 passages: the tide passage's two sentences.
    assert ev.answer_relevance == pytest.approx(half, abs=1e-6)
    assert ev.answer_coverage == pytest.approx(2 / 3)
    assert 0 < ev.question_support < 1 and ev.document > 0
    assert ev.vector(("coverage", "top")) == [ev.coverage, 0.5]


def test_evidence_depth_reaches_further_passages():
    ev = evidence(QUESTION, hits(), None, KeywordEmbed(), depth=6)
    assert ev.sentence == pytest.approx(1.0, abs=1e-6)
    assert ev.focus == pytest.approx(0.5, abs=1e-6)


def test_lexical_signals_read_the_bm25_ranking():
    agree = [make_hit(1, 6.0, 100, "doc0.md", text="Tides rise twice a day.")]
    other = [make_hit(1, 9.0, 105, "doc5.md", text="The tides follow the moon.")]
    base = evidence(QUESTION, hits(), None, KeywordEmbed())
    assert evidence(QUESTION, hits(), [], KeywordEmbed()) == base
    ev = evidence(QUESTION, hits(), agree, KeywordEmbed())
    # 6.0 over the question's three content words (tide, follow, moon).
    assert ev.bm25_per_word == pytest.approx(2.0) and ev.agreement == 1.0
    ev = evidence(QUESTION, hits(), other, KeywordEmbed())
    assert ev.bm25_per_word == pytest.approx(3.0) and ev.agreement == 0.0
    assert {k: v for k, v in ev.values.items() if k not in ("bm25_per_word", "agreement")} == \
        {k: v for k, v in base.values.items() if k not in ("bm25_per_word", "agreement")}


def test_evidence_without_hits_or_sentences():
    embed = KeywordEmbed()
    assert evidence(QUESTION, [], None, embed) == Evidence(dict.fromkeys(SIGNALS, 0.0))
    short = [make_hit(1, 0.4, 1, "a.md", text="Moon. Tides rise.")]
    ev = evidence(QUESTION, short, None, embed)
    assert ev.sentence == 0.0 and ev.coverage == pytest.approx(2 / 3)
    assert ev.focus == pytest.approx(-0.4) and ev.answer_relevance == 0.0
    assert embed.calls == []  # nothing worth embedding


def test_probability_and_decision_follow_the_model():
    model = Model(("sentence", "coverage"), (4.0, 2.0), -3.0, 0.5)
    ev = Evidence({"sentence": 0.6, "coverage": 0.5, "top": 0.9})
    z = -3.0 + 4.0 * 0.6 + 2.0 * 0.5
    assert probability(ev, model) == pytest.approx(1 / (1 + math.exp(-z)))
    p = probability(ev, model)
    assert decide(ev, threshold=p, model=model).answer
    assert not decide(ev, threshold=p + 1e-9, model=model).answer
    d = decide(ev, model=model)
    assert d.threshold == 0.5 and d.score == p and d.evidence is ev
    assert not model.reads_lexical and Model(("bm25_per_word",), (1.0,), 0, 0.5).reads_lexical


def test_the_shipped_model_answers_the_clear_case_and_abstains_on_nothing():
    model = load_model()
    assert set(model.features) <= set(SIGNALS) and len(model.coefficients) == len(model.features)
    strong = Evidence({"top": 0.8, "sentence": 0.9, "coverage": 1.0, "focus": 0.1,
                       "bm25_per_word": 3.0, "agreement": 1.0, "answer_relevance": 0.9,
                       "answer_coverage": 1.0, "question_support": 0.95, "document": 1.1})
    assert decide(strong).answer
    assert not decide(Evidence(dict.fromkeys(SIGNALS, 0.0))).answer


@pytest.mark.parametrize("body,message", [
    ("not json", "cannot be read"),
    ('{"features": ["sentence"], "coefficients": [1.0]}', "cannot be read"),
    ('{"features": ["nope"], "coefficients": [1.0], "intercept": 0, "threshold": 0.5}',
     "unknown signals"),
    ('{"features": ["top"], "coefficients": [1.0, 2.0], "intercept": 0, "threshold": 0.5}',
     "coefficient count"),
])
def test_a_broken_model_file_says_how_to_recreate_it(tmp_path, body, message):
    path = tmp_path / "model.json"
    path.write_text(body)
    with pytest.raises(RagminiError, match=message) as exc:
        load_model(path)
    assert "bench.calibrate_abstain" in str(exc.value) or "unknown" in str(exc.value)


def test_committed_calibration_matches_the_model_file_and_beats_top1():
    report = json.loads((REPO / "bench" / "abstain_calibration.json").read_text())
    model = json.loads(MODEL_FILE.read_text())
    assert report["fitted_on"] == model["fitted_on"] == "dev"
    for key in ("features", "coefficients", "intercept", "threshold"):
        assert report[key] == pytest.approx(model[key]) if key != "features" else \
            report[key] == model[key]
    assert report["candidates"][report["chosen"]]["features"] == model["features"]
    # Chosen on dev: the best cross-validated dev balanced accuracy among the candidates.
    best = max(c["dev_cv_balanced_accuracy"] for n, c in report["candidates"].items()
               if n != "top1")
    assert report["dev_cv"]["balanced_accuracy"] == best
    for key, split in report["sets"].items():
        assert split["unanswerable"] > 0 and split["questions"] > split["unanswerable"]
        assert split["model"]["auc"] >= split["top1"]["auc"] - 0.02, key
    for key in ("faq/test", "bundled/test", "faq/dev"):
        assert report["sets"][key]["model"]["balanced_accuracy"] > \
            report["sets"][key]["top1"]["balanced_accuracy"], key
    # The threshold keeps abstaining on answerable dev questions rare.
    for key in ("faq/dev", "bundled/dev"):
        assert report["sets"][key]["model"]["answerable_abstained"] <= 0.2


def test_answer_side_signals_only_when_asked_for():
    embed = KeywordEmbed()
    ev = evidence(QUESTION, hits(), None, embed, signals=("sentence", "coverage"))
    assert len(embed.calls) == 1  # the sentences only: no extractive answer was made
    assert ev.answer_relevance == 0.0 and ev.document == 0.0
    assert ev.sentence == evidence(QUESTION, hits(), None, KeywordEmbed()).sentence
