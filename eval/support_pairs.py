"""Build eval/data/support_pairs.jsonl: labelled (sentence, source passage) pairs.

    .venv/bin/python eval/support_pairs.py          # rewrite the file
    .venv/bin/python eval/support_pairs.py --check  # fail if it is out of date

Each pair asks: does this source passage support this sentence? The passage is
a window of about 150-200 words of one bundled corpus document (the whole
document when it is shorter), as a retriever would hand it to the generator.

    copy           label 1  a sentence of the window, lightly edited (scripted)
    paraphrase     label 1  a hand-written paraphrase of something the window says
    other_doc      label 0  a sentence of another document (scripted: one from the
                            most similar document, one from a random one)
    invented       label 0  hand-written: a plausible claim on the topic that the
                            document does not make (style "smollm2": written the
                            way SmolLM2 writes when it drifts: fluent, cited, wrong)
    contradiction  label 0  hand-written: a wrong number, name or negated claim

Hand-written sentences live in eval/data/support_handwritten.jsonl with the
document they are judged against and an `anchor`, a snippet of that document
the window must contain (the sentence paraphrased, or the one the claim is
about). Everything is seeded, so the file is rebuilt byte for byte.

The held-back part: documents whose sha256(doc_id) falls in the lowest 35% of
the hash range are "test", the rest "calibration". Thresholds and coefficients
are chosen on calibration pairs only; bench/calibrate_support.py reports on
test pairs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from generation.support import _blocks, _split_block  # noqa: E402
from ingest.load import load_paths  # noqa: E402

CORPUS = REPO / "corpus" / "docs"
DATA = REPO / "eval" / "data"
PAIRS = DATA / "support_pairs.jsonl"
HANDWRITTEN = DATA / "support_handwritten.jsonl"
SEED = 20260517
TEST_SHARE = 0.35
COPIES_PER_DOC = 2
WINDOW_WORDS = (150, 200)
# Sentences another document also says are not negatives for it. Sentences
# about BM25 are never borrowed (bm25.md, tf-idf.txt, hybrid-search.html and
# out-of-vocabulary.txt all describe it); the rest were found by reading every
# borrowed sentence against its window.
NEVER_BORROWED = ("BM25",)
ALSO_SAYS = {
    "tf-idf.txt": ("The inverse document frequency part rewards rare terms", "The term frequency part grows"),
    "word-embeddings.md": ("A contextual embedding is computed from the whole sentence",),
}
_MARKERS = re.compile(r"^(?:So|Also|Even so|Still|Then|Instead|Finally|Second|First|Both),?\s+")


def part_of(doc_id: str) -> str:
    """ "test" for about 35% of documents, by a stable hash of the id; else "calibration"."""
    h = int(hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "test" if h < TEST_SHARE else "calibration"


class Doc:
    """A document as paragraphs of sentences, for windows."""

    def __init__(self, doc_id: str, text: str):
        self.doc_id = doc_id
        self.text = text
        self.sentences: list[tuple[int, str, bool]] = []  # (paragraph, sentence, heading)
        for p, (block, heading) in enumerate(_blocks(text)):
            if heading:
                self.sentences.append((p, block, True))
            else:
                self.sentences.extend((p, s, False) for s in _split_block(block))

    def index_of(self, anchor: str) -> int:
        for i, (_, sentence, _) in enumerate(self.sentences):
            if anchor in sentence:
                return i
        # An anchor may run across a line break that the splitter joined.
        flat = re.sub(r"\s+", " ", anchor)
        for i, (_, sentence, _) in enumerate(self.sentences):
            if flat in sentence:
                return i
        raise SystemExit(f"{self.doc_id}: anchor not found in any sentence: {anchor!r}")

    def claims(self) -> list[int]:
        """Sentences worth copying or borrowing: prose, 8 words or more."""
        return [i for i, (_, s, heading) in enumerate(self.sentences) if not heading and len(s.split()) >= 8]

    def window(self, index: int, rng: random.Random) -> str:
        """A 150-200 word run of sentences around `index` (the whole text when shorter)."""
        target = rng.randint(*WINDOW_WORDS)
        words = [len(s.split()) for _, s, _ in self.sentences]
        lo = hi = index
        total = words[index]
        while True:
            options = []
            if lo > 0 and total + words[lo - 1] <= target:
                options.append("left")
            if hi + 1 < len(words) and total + words[hi + 1] <= target:
                options.append("right")
            if not options:
                break
            if rng.choice(options) == "left":
                lo -= 1
                total += words[lo]
            else:
                hi += 1
                total += words[hi]
        out: list[str] = []
        last_paragraph = None
        for p, sentence, heading in self.sentences[lo:hi + 1]:
            shown = f"# {sentence}" if heading else sentence
            if last_paragraph is None:
                out.append(shown)
            elif p != last_paragraph:
                out.append("\n\n" + shown)
            else:
                out.append(" " + shown)
            last_paragraph = p
        return "".join(out)


def light_edit(sentence: str, rng: random.Random) -> str:
    """A copied sentence as a generator might restate it: trimmed, maybe cited."""
    edited = sentence
    if rng.random() < 0.5:
        edited = re.sub(r"\s*\([^()]*\)", "", edited)
    if rng.random() < 0.7:
        stripped = _MARKERS.sub("", edited)
        if stripped != edited:
            edited = stripped[0].upper() + stripped[1:]
    if rng.random() < 0.4 and ";" in edited:
        edited = edited.split(";")[0].rstrip() + "."
    edited = edited.replace("**", "").replace("*", "")
    if rng.random() < 0.4:
        edited = re.sub(r"\s*([.!?])$", r" [1]\1", edited)
    return edited


def _similarity(docs: list[Doc]) -> dict[str, list[str]]:
    """Other documents of the same part, most similar first (TF-IDF cosine)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform([d.text for d in docs])
    sims = (matrix @ matrix.T).toarray()
    order: dict[str, list[str]] = {}
    for i, doc in enumerate(docs):
        ranked = sorted(range(len(docs)), key=lambda j: (-sims[i, j], docs[j].doc_id))
        order[doc.doc_id] = [docs[j].doc_id for j in ranked
                             if j != i and part_of(docs[j].doc_id) == part_of(doc.doc_id)]
    return order


def build() -> list[dict]:
    docs = [Doc(d.doc_id, d.text) for d in load_paths([CORPUS]).documents]
    by_id = {d.doc_id: d for d in docs}
    similar = _similarity(docs)
    pairs: list[dict] = []

    def add(sentence: str, doc: Doc, source: str, label: int, kind: str, **extra) -> None:
        pairs.append({"sentence": sentence, "source": source, "doc_id": doc.doc_id, "label": label,
                      "kind": kind, "part": part_of(doc.doc_id), **extra})

    for doc in docs:
        rng = random.Random(f"{SEED}:{doc.doc_id}")
        for i in rng.sample(doc.claims(), COPIES_PER_DOC):
            add(light_edit(doc.sentences[i][1], rng), doc, doc.window(i, rng), 1, "copy")
        borrowed = [similar[doc.doc_id][0], rng.choice(similar[doc.doc_id][1:])]
        for other_id in borrowed:
            other = by_id[other_id]
            excluded = NEVER_BORROWED + ALSO_SAYS.get(doc.doc_id, ())
            choices = [i for i in other.claims() if not any(w in other.sentences[i][1] for w in excluded)]
            sentence = other.sentences[rng.choice(choices)][1]
            anchor = rng.choice(doc.claims())
            add(sentence, doc, doc.window(anchor, rng), 0, "other_doc", from_doc=other_id)

    for line_no, line in enumerate(HANDWRITTEN.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        doc = by_id.get(row["doc_id"])
        if doc is None:
            raise SystemExit(f"{HANDWRITTEN.name}:{line_no}: no document {row['doc_id']!r}")
        rng = random.Random(f"{SEED}:{doc.doc_id}:{line_no}")
        extra = {"style": row["style"]} if "style" in row else {}
        add(row["sentence"], doc, doc.window(doc.index_of(row["anchor"]), rng), int(row["label"]),
            row["kind"], **extra)
    return pairs


def dumps(pairs: list[dict]) -> str:
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    text = dumps(build())
    if args.check:
        if not PAIRS.exists() or PAIRS.read_text(encoding="utf-8") != text:
            print(f"{PAIRS} is out of date: run eval/support_pairs.py", file=sys.stderr)
            return 1
        return 0
    DATA.mkdir(parents=True, exist_ok=True)
    PAIRS.write_text(text, encoding="utf-8")
    pairs = [json.loads(line) for line in text.splitlines()]
    from collections import Counter

    counts = Counter((p["part"], p["kind"]) for p in pairs)
    print(f"wrote {len(pairs)} pairs to {PAIRS.relative_to(REPO)}")
    for part in ("calibration", "test"):
        docs = len({p["doc_id"] for p in pairs if p["part"] == part})
        row = ", ".join(f"{k} {counts[(part, k)]}" for k in
                        ("copy", "paraphrase", "other_doc", "invented", "contradiction"))
        print(f"  {part:<11} {docs:>2} docs: {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
