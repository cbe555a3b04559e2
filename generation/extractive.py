"""The extractive generator: no language model, only the sources' own sentences.

It answers with the source sentences closest to the question (MiniLM cosine),
cited, and stays on topic:

- only prose can be picked: headings (Markdown, and man-page section lines such
  as DESCRIPTION), code and command lines, option-list items, fragments cut at a
  chunk's edge or left behind by a code block, and sentences that only
  introduce what follows ("... put this in .profile:") are not sentences of an
  answer;
- one document answers: the sources' document whose best chunk is closest to
  the question, helped by how many of the question's words it holds; its
  sentences must reach `floor` times its best sentence's relevance, and a
  sentence of another document must beat that best (`other_floor`), so an
  answer about tar does not end on a grep option;
- relevance is the cosine to the question plus `centrality` times the cosine to
  the document's centroid: what the document is about beats a detail that
  happens to share the question's words;
- a sentence that leans on the one before it ("This preserves the history
  ...", "However, ...") brings that one along, and a chosen sentence brings the
  one that reads on from it; shown in source order;
- maximal marginal relevance (Carbonell and Goldstein, 1998) passes over a
  sentence that says what a picked one already says;
- at most `max_sentences`, fewer when fewer clear the floor.

The constants were chosen on the dev splits of the FAQ set and of the bundled
corpus/answers.jsonl; bench/extractive.py compares the generator with the one
it replaced on dev and test (docs/answers.md). The answer is grounded by
construction and is the baseline an LM answer must beat on closeness to the
reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from generation.prompt import Source
from generation.support import sentence_units

Embed = Callable[[list[str]], np.ndarray]

MAX_SENTENCES = 4
MMR_LAMBDA = 0.7  # relevance against redundancy
FLOOR = 0.8  # a sentence needs at least this share of the best sentence's cosine
OTHER_FLOOR = 1.1  # ... and this share when it comes from another document
FOLLOW_FLOOR = 0.4  # a sentence reading on from a picked one comes along above this share
CENTRALITY = 0.3  # weight of a sentence's cosine to its document's centroid
COVERAGE_WEIGHT = 0.3  # of the question's words a document holds, when choosing it
MIN_WORDS = 4  # fewer plain words answer nothing
PROSE_SHARE = 0.6  # share of a sentence's tokens that must be plain words
_MARKDOWN = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+)")
# A plain word: letters (with inner ' or -), maybe quoted or bracketed, maybe punctuated.
_PLAIN_WORD = re.compile(r"^[(\"'`\u2018\u201c]*[A-Za-z][A-Za-z'\u2019-]*[)\"'`\u2019\u201d.,;:!?]*$")
_ENDS = re.compile(r"[.!?][)\"'`\u2019\u201d]*$")
_CODE_SPAN = re.compile(r"`[^`'\n]{1,80}(?:'|`)")
_OPENERS = "\"'`\u2018\u201c("
_CAPS_HEADING = re.compile(r"^[ \t]*([A-Z][A-Z0-9]+(?:[ /-][A-Z0-9]+)*)[ \t]*$", re.MULTILINE)
# "-v, --verbose" and "--force" open an option list's items, not sentences.
_OPTION = re.compile(r"^[-\u2010\u2212+]{1,2}[A-Za-z0-9]")
# A sentence that opens with one of these reads on from the sentence before it.
_LEANS = frozenset("""this these that those it its they them their such so thus hence
therefore however but also otherwise then consequently instead here likewise similarly
furthermore moreover nevertheless nonetheless still yet""".split())
_LEANS_PHRASES = ("in this case", "in that case", "in such cases", "for this reason",
                  "in other words", "as a result", "on the other hand", "because of this",
                  "apart from this", "in addition")
# A tail that introduces an example the answer does not show: "..., e.g." -> "...".
_INTRO_TAIL = re.compile(r"[,;]?\s*(?:e\.g\.|i\.e\.|for example|for instance)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    """A source sentence that may stand in an answer."""

    n: int  # the source's number
    index: int  # its place among the source's sentences
    text: str
    leans: bool  # it reads on from the sentence before it


@dataclass(frozen=True)
class Extract:
    text: str  # sentences, each followed by its citation
    picked: list[tuple[int, str]]  # (source number, sentence), in answer order
    document: str = ""  # the doc_id the answer was drawn from
    document_score: float = 0.0  # its score (see `document_scores`)


def is_prose(sentence: str) -> bool:
    """Whether `sentence` reads as a sentence: enough plain words, no option-list
    item or command line, no fragment (it starts with a letter, a digit or a
    quote and ends with a full stop, ! or ?)."""
    if _OPTION.match(sentence) or not _ENDS.search(sentence):
        return False
    if not (sentence[:1].isalnum() or sentence[:1] in _OPENERS):
        return False  # ") because ...": the rest of a sentence
    # A quoted command (`ls -l', `ls -l`) reads as one word of the sentence.
    tokens = _CODE_SPAN.sub("code", sentence).split()
    words = sum(bool(_PLAIN_WORD.match(t)) for t in tokens)
    return words >= MIN_WORDS and words / len(tokens) >= PROSE_SHARE


def leans_on_previous(sentence: str) -> bool:
    """Whether `sentence` opens with a word that points back ("This", "However")."""
    lowered = sentence.lower()
    first = re.sub(r"[^a-z']", "", lowered.split()[0]) if lowered.split() else ""
    return first in _LEANS or lowered.startswith(_LEANS_PHRASES)


def candidate_sentences(sources: list[Source]) -> list[Candidate]:
    """The sentences of `sources` an answer may use, first occurrence only.

    Headings, non-prose (see `is_prose`), a chunk's first sentence when the
    chunk starts inside its document (it may be cut), and a sentence ending in
    ":" (it introduces what follows) are left out; Markdown list marks are
    dropped and a trailing ", e.g." is cut.
    """
    seen: set[str] = set()
    out: list[Candidate] = []
    for s in sources:
        # A line of capitals alone ("DESCRIPTION", "SEE ALSO") heads a man page section.
        units = sentence_units(_CAPS_HEADING.sub(r"\n\n# \1\n\n", s.text))
        after_text = s.chunk.start == 0  # a chunk starting inside its document may be cut
        for i, (sentence, heading) in enumerate(units):
            clean = _INTRO_TAIL.sub("", _MARKDOWN.sub("", sentence).strip())
            if clean and clean != sentence.strip() and not _ENDS.search(clean):
                clean += "."
            prose = not heading and is_prose(clean)
            # Lower case after code or a cut: the rest of a sentence ("which requests
            # base 10."); after a heading or a whole sentence, a command name ("tar saves").
            cut = clean[:1].islower() and not after_text
            after_text = heading or prose
            if not prose or cut or clean.lower() in seen:
                continue
            seen.add(clean.lower())
            out.append(Candidate(s.n, i, clean, leans_on_previous(clean)))
    return out


def mmr(relevance: np.ndarray, vectors: np.ndarray, n: int, lam: float = MMR_LAMBDA) -> list[int]:
    """Indices of `n` rows of `vectors` (unit vectors) chosen by maximal marginal
    relevance: lam * relevance - (1 - lam) * max cosine to the rows already chosen."""
    chosen: list[int] = []
    left = list(range(len(vectors)))
    while left and len(chosen) < n:
        if chosen:
            redundancy = (vectors[left] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        scores = lam * relevance[left] - (1 - lam) * redundancy
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return chosen


def extract(question: str, sources: list[Source], embed: Embed,
            max_sentences: int = MAX_SENTENCES, *, floor: float = FLOOR,
            other_floor: float = OTHER_FLOOR, lam: float = MMR_LAMBDA,
            centrality: float = CENTRALITY, follow_floor: float = FOLLOW_FLOOR) -> Extract:
    """The answer made of the source sentences that answer `question`, each cited.

    The answer's document is the one whose best chunk is closest to the question
    (MiniLM cosine) plus COVERAGE_WEIGHT times the share of the question's
    content words its chunks hold. Sentences are ranked by maximal marginal
    relevance among those that clear the floors (see the module docstring); up
    to `max_sentences` are kept, with the sentence each one leans on, and shown
    in source order (source 1 first, then each source's own order), so the
    answer reads as the documents do.
    """
    candidates = candidate_sentences(sources)
    if not candidates:
        return Extract("", [])
    vectors = embed([question] + [s.text for s in sources] + [c.text for c in candidates])
    query, chunks, sentences = vectors[0], vectors[1:len(sources) + 1], vectors[len(sources) + 1:]
    doc_of = {s.n: s.doc_id for s in sources}
    has_candidates = {doc_of[c.n] for c in candidates}
    ranked = document_scores(question, [s for s in sources if s.doc_id in has_candidates],
                             [float(chunks[i] @ query) for i, s in enumerate(sources)
                              if s.doc_id in has_candidates])
    anchor = max(ranked, key=ranked.get)
    mine = np.array([doc_of[c.n] == anchor for c in candidates])
    relevance = sentences @ query
    if centrality:
        # How typical a sentence is of the answer's document: a sentence the
        # document is about beats a detail that happens to share the question's words.
        centroid = sentences[mine].mean(axis=0)
        relevance = relevance + centrality * (sentences @ (centroid / np.linalg.norm(centroid)))
    top = max(float(relevance[mine].max()), 0.0)
    eligible = [i for i in range(len(candidates))
                if relevance[i] >= top * (floor if mine[i] else other_floor)]
    position = {(c.n, c.index): i for i, c in enumerate(candidates)}
    chosen: set[int] = set()
    for j in mmr(relevance[eligible], sentences[eligible], len(eligible), lam):
        i = eligible[j]
        if i in chosen:
            continue
        group = [i]
        c = candidates[i]
        if c.leans:
            previous = position.get((c.n, c.index - 1))
            if previous is None:
                continue  # what it leans on is not prose (a code block) or not here
            if previous not in chosen:
                group.insert(0, previous)
        if len(chosen) + len(group) > max_sentences:
            continue
        chosen.update(group)
        if len(chosen) >= max_sentences:
            break
    if not chosen:  # every sentence that clears the floor leans on one that is not here
        chosen.add(max(eligible, key=lambda i: relevance[i]))
    # A sentence that reads on from a chosen one ("This means ...") comes with it if
    # it clears the lower floor: it is the rest of what the chosen one says.
    for i in sorted(chosen, key=lambda i: -relevance[i]):
        c = candidates[i]
        after = position.get((c.n, c.index + 1))
        if (after is not None and after not in chosen and candidates[after].leans
                and relevance[after] >= top * follow_floor and len(chosen) < max_sentences):
            chosen.add(after)
    picked = [(candidates[i].n, candidates[i].text)
              for i in sorted(chosen, key=lambda i: (candidates[i].n, candidates[i].index))]
    text = " ".join(f"{sentence} [{n}]" for n, sentence in picked)
    return Extract(text, picked, anchor, float(ranked[anchor]))


def document_scores(question: str, sources: list[Source], chunk_scores: list[float]
                    ) -> dict[str, float]:
    """{doc_id: score} of the sources' documents as answers to `question`: best chunk
    cosine plus COVERAGE_WEIGHT times its coverage of the question's content words."""
    from generation.abstain import coverage

    best: dict[str, float] = {}
    texts: dict[str, list[str]] = {}
    for s, score in zip(sources, chunk_scores):
        best[s.doc_id] = max(best.get(s.doc_id, -1.0), float(score))
        texts.setdefault(s.doc_id, []).append(s.text)
    return {d: best[d] + COVERAGE_WEIGHT * coverage(question, " ".join(texts[d])) for d in best}
