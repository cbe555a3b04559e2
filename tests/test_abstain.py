"""The abstention features, checked by hand on made-up hits and a keyword embedder,
and the committed calibration report against the shipped constants."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from generation.abstain import (
    COEFFICIENTS,
    FEATURES,
    INTERCEPT,
    THRESHOLD,
    Evidence,
    content_words,
    coverage,
    decide,
    evidence,
    probability,
)
from tests.conftest import REPO, make_hit

KEYWORDS = ("tide", "moon", "bread", "oven")


class KeywordEmbed:
    """One dimension per keyword the text contains (plus one for "none"), unit norm;
    records its calls."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            v = np.array([float(k in text.lower()) for k in KEYWORDS] + [0.0], dtype=np.float32)
            if not v.any():
                v[-1] = 1.0
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows)


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
    assert ev.sentence == pytest.approx(half, abs=1e-6)
    assert ev.coverage == pytest.approx(2 / 3)
    assert ev.focus == pytest.approx(half - 0.5, abs=1e-6)
    assert ev.vector() == [ev.sentence, ev.coverage, ev.focus]
    assert len(ev.vector()) == len(FEATURES) == len(COEFFICIENTS)
    # One embed call: the question first, then the 4+ word sentences of the top 5 passages.
    assert len(embed.calls) == 1
    texts = embed.calls[0]
    assert texts[0] == QUESTION
    assert "Moon and tides." not in texts
    assert "The tides follow the moon around the earth." not in texts
    assert "Bread needs a hot oven to rise well." in texts and len(texts) == 1 + 6


def test_evidence_depth_reaches_further_passages():
    ev = evidence(QUESTION, hits(), None, KeywordEmbed(), depth=6)
    assert ev.sentence == pytest.approx(1.0, abs=1e-6)
    assert ev.focus == pytest.approx(0.5, abs=1e-6)


def test_lexical_hits_do_not_change_the_evidence():
    lexical = [make_hit(1, 7.5, 105, "doc5.md", text="The tides follow the moon.")]
    base = evidence(QUESTION, hits(), None, KeywordEmbed())
    assert evidence(QUESTION, hits(), [], KeywordEmbed()) == base
    assert evidence(QUESTION, hits(), lexical, KeywordEmbed()) == base


def test_evidence_without_hits_or_sentences():
    embed = KeywordEmbed()
    assert evidence(QUESTION, [], None, embed) == Evidence(0.0, 0.0, 0.0)
    short = [make_hit(1, 0.4, 1, "a.md", text="Moon. Tides rise.")]
    ev = evidence(QUESTION, short, None, embed)
    assert ev == Evidence(0.0, pytest.approx(2 / 3), pytest.approx(-0.4))
    assert embed.calls == []  # nothing worth embedding


def test_probability_and_decision():
    ev = Evidence(0.6, 0.5, 0.1)
    z = INTERCEPT + sum(c * x for c, x in zip(COEFFICIENTS, (0.6, 0.5, 0.1)))
    assert probability(ev) == pytest.approx(1 / (1 + math.exp(-z)))
    # Every feature counts for answering.
    assert all(c > 0 for c in COEFFICIENTS)
    assert probability(Evidence(0.7, 0.5, 0.1)) > probability(ev)
    assert probability(Evidence(0.6, 0.8, 0.1)) > probability(ev)
    p = probability(ev)
    assert decide(ev, threshold=p).answer and not decide(ev, threshold=p + 1e-9).answer
    d = decide(ev)
    assert d.threshold == THRESHOLD and d.score == p and d.evidence is ev
    # A sentence that matches and names what was asked: answer; nothing close: abstain.
    assert decide(Evidence(0.85, 1.0, 0.2)).answer
    assert not decide(Evidence(0.2, 0.0, 0.05)).answer


def test_committed_calibration_matches_the_module_and_beats_top1():
    report = json.loads((REPO / "bench" / "abstain_calibration.json").read_text())
    assert report["fitted_on"] == "dev"
    assert report["features"] == list(FEATURES)
    assert report["coefficients"] == pytest.approx(list(COEFFICIENTS))
    assert report["intercept"] == pytest.approx(INTERCEPT)
    assert report["threshold"] == pytest.approx(THRESHOLD)
    faq_test = report["sets"]["faq/test"]
    assert faq_test["unanswerable"] > 0 and faq_test["questions"] > faq_test["unanswerable"]
    assert faq_test["auc_model"] > faq_test["auc_top1"]
    assert faq_test["balanced_accuracy"] > faq_test["balanced_accuracy_top1"]
    crossed = report["cross_fitted"]["mean"]["faq"]
    assert crossed["model"]["auc"] > crossed["top1"]["auc"]
