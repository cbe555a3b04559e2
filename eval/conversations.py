"""Follow-up questions: does retrieval find the last turn's documents from the history?

A conversation set is a folder holding a BEIR ``corpus.jsonl`` and a
``conversations.jsonl``, one conversation a line:

    {"_id": "conv-001",
     "turns": [{"question": "...", "relevant": ["doc id"]}, {"question": "...", "relevant": [...]}],
     "rewrite": "standalone form of the last turn (optional)",
     "split": "dev" | "test" (optional)}

A turn may carry its "answer" too; where it does not, the history gives the
earlier turns with an empty answer. The last turn is retrieved three ways:

- ``alone``: the follow-up as asked;
- ``history``: the standalone query generation/followup.py makes from the
  earlier turns (the rule, or an LLM when one is given);
- ``rewrite``: the hand-written standalone question, where given (the ceiling).

Each variant is scored at document level (recall@5, recall@10, MRR@10) with the
same paired tests as `eval` between every two variants.

`build_followups` writes our follow-up set: the conversations of
eval/data/followups.jsonl over the FAQ documents and the man pages of sections
1, 8 and 1ssl (both from `ragmini datasets build`), with queries.jsonl and
qrels/<split>.tsv of the rewrites so `ragmini eval --dataset` reads it too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import RagminiError
from eval.harness import doc_run
from eval.metrics import evaluate_per_query, mean_metrics
from eval.stats import DEFAULT_RESAMPLES, Comparison, compare

VARIANTS = ("alone", "history", "rewrite")
METRICS = ("recall@5", "recall@10", "mrr@10")
KS = (5, 10)
FOLLOWUPS = Path(__file__).resolve().parent / "data" / "followups.jsonl"
MAN_SECTIONS = ("1", "8", "1ssl")
CHUNKS_PER_DOC = 10  # chunks retrieved per document wanted, as `eval` does

Rewrite = Callable[[str, list[dict]], str]  # (follow-up, history) -> query searched


@dataclass(frozen=True)
class Turn:
    question: str
    relevant: frozenset[str]
    answer: str = ""


@dataclass(frozen=True)
class Conversation:
    cid: str
    turns: tuple[Turn, ...]
    rewrite: str | None = None
    split: str = ""

    @property
    def history(self) -> list[dict]:
        """The earlier turns as `ask(history=...)` takes them."""
        return [{"question": t.question, "answer": t.answer} for t in self.turns[:-1]]


@dataclass(frozen=True)
class VariantResult:
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    queries: dict[str, str]  # {conversation id: the query searched}
    run: dict[str, dict[str, float]]


@dataclass(frozen=True)
class ConversationEvalResult:
    dataset: str
    split: str
    method: str
    n_conversations: int
    variants: dict[str, VariantResult]
    comparisons: list[Comparison] = field(default_factory=list)
    rewriter: str = "rule"

    def to_dict(self) -> dict:
        """The `eval conversations --json` body for one retrieval method."""
        return {"dataset": self.dataset, "split": self.split, "method": self.method,
                "rewriter": self.rewriter, "n_conversations": self.n_conversations,
                "variants": {v: {m: round(r.metrics[m], 4) for m in METRICS}
                             for v, r in self.variants.items()},
                "comparisons": [c.to_dict() for c in self.comparisons]}


def split_of(cid: str) -> str:
    """dev or test, stably, for a conversation without a split of its own."""
    return "test" if int(hashlib.sha1(cid.encode()).hexdigest(), 16) % 2 else "dev"


def load_conversations(path: Path, split: str = "all") -> list[Conversation]:
    """The conversations of `split` ("dev", "test" or "all") in `path` (file order)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagminiError(f"cannot read {path}: {exc.strerror}") from exc
    out: list[Conversation] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RagminiError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise RagminiError(f"{where}: not a JSON object")
        cid = str(row.get("_id", ""))
        turns = row.get("turns")
        if not cid or not isinstance(turns, list) or len(turns) < 2:
            raise RagminiError(f'{where}: a conversation needs an "_id" and at least two '
                               '"turns"')
        if cid in seen:
            raise RagminiError(f"{where}: duplicate conversation id {cid}")
        seen.add(cid)
        parsed = []
        for turn in turns:
            question = turn.get("question") if isinstance(turn, dict) else None
            relevant = turn.get("relevant", []) if isinstance(turn, dict) else None
            if not isinstance(question, str) or not question.strip() or \
                    not isinstance(relevant, list):
                raise RagminiError(f'{where}: each turn needs a "question" and a "relevant" '
                                   "list of document ids")
            parsed.append(Turn(question, frozenset(str(d) for d in relevant),
                               str(turn.get("answer") or "")))
        if not parsed[-1].relevant:
            raise RagminiError(f"{where}: the last turn of {cid} names no relevant document")
        rewrite = row.get("rewrite")
        if rewrite is not None and (not isinstance(rewrite, str) or not rewrite.strip()):
            raise RagminiError(f'{where}: "rewrite" must be the standalone question or absent')
        own = str(row.get("split") or split_of(cid))
        if split in ("all", own):
            out.append(Conversation(cid, tuple(parsed), rewrite, own))
    if not out:
        raise RagminiError(f"{path} holds no conversation of split {split!r}")
    return out


def retrieve(searcher, queries: dict[str, str], depth: int = 10 * CHUNKS_PER_DOC
             ) -> dict[str, dict[str, float]]:
    """{id: document-level ranking} of each query (a document ranks at its best chunk)."""
    from core.errors import QueryError
    from retrieval.contract import search_one

    run = {}
    for cid, text in queries.items():
        try:
            hits = search_one(searcher, text, depth)
        except QueryError:  # nothing it can match: scored 0, as `eval` does
            hits = []
        run[cid] = doc_run(hits)
    return run


def evaluate_conversations(store, conversations: Sequence[Conversation], method: str,
                           rewrite: Rewrite, *, variants: Sequence[str] = VARIANTS,
                           dataset: str = "", split: str = "", rewriter: str = "rule",
                           embedders: dict | None = None, seed: int = 0,
                           resamples: int = DEFAULT_RESAMPLES) -> ConversationEvalResult:
    """Score the last turn of each conversation under each variant, with paired
    tests between every two variants. `rewrite(question, history)` gives the
    query the `history` variant searches."""
    from retrieval.methods import open_searcher

    if not conversations:
        raise RagminiError("no conversation to evaluate")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise RagminiError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if "rewrite" in variants and not all(c.rewrite for c in conversations):
        variants = [v for v in variants if v != "rewrite"]
    qrels = {c.cid: {d: 1 for d in c.turns[-1].relevant} for c in conversations}
    searcher = open_searcher(store, method, embedders)
    results = {}
    for variant in variants:
        queries = {c.cid: _query(c, variant, rewrite) for c in conversations}
        run = retrieve(searcher, queries)
        per_query = evaluate_per_query(qrels, run, KS)
        results[variant] = VariantResult(mean_metrics(per_query, list(METRICS)), per_query,
                                         queries, run)
    comparisons = compare({v: r.per_query for v, r in results.items()}, METRICS, resamples,
                          seed) if len(results) > 1 else []
    return ConversationEvalResult(dataset, split, method, len(conversations), results,
                                  comparisons, rewriter)


def _query(c: Conversation, variant: str, rewrite: Rewrite) -> str:
    last = c.turns[-1].question
    if variant == "alone":
        return last
    if variant == "history":
        return rewrite(last, c.history)
    return c.rewrite or last


def format_conversation_table(result: ConversationEvalResult) -> str:
    lines = [f"{'variant':<10}" + "".join(f"{m:>11}" for m in METRICS)]
    lines.append("-" * len(lines[0]))
    for variant, r in result.variants.items():
        lines.append(f"{variant:<10}" + "".join(f"{r.metrics[m]:>11.3f}" for m in METRICS))
    lines.append(f"({result.n_conversations} conversations, method {result.method}, "
                 f"history rewritten by {result.rewriter})")
    if result.comparisons:
        lines.append("")
        lines.append("paired tests (significant: Holm-adjusted p < 0.05 and 95% bootstrap CI "
                     "excluding 0):")
        lines.extend(c.line() for c in result.comparisons)
    return "\n".join(lines)


def evaluate_conversation_run(dataset: Path, methods: Sequence[str] = ("sbert",), *,
                              split: str = "test", seed: int = 0,
                              resamples: int = DEFAULT_RESAMPLES, progress: bool = True,
                              complete=None) -> list[ConversationEvalResult]:
    """`eval conversations`: the folder's corpus ingested into a cached store (no work
    the second time), then each method scored on the conversations of `split`.
    `complete(messages) -> str` rewrites with a language model instead of the rule."""
    from eval.beir import dataset_store_dir
    from generation.followup import standalone
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index
    from retrieval.methods import parse_methods

    dataset = Path(dataset)
    corpus = dataset / "corpus.jsonl"
    if not corpus.is_file():
        raise RagminiError(f"{corpus} is missing: a conversation set holds corpus.jsonl "
                           "(BEIR) and conversations.jsonl")
    conversations = load_conversations(dataset / "conversations.jsonl", split)
    chosen = parse_methods(list(methods))
    config = ChunkConfig()

    def rewrite(question: str, history: list[dict]) -> str:
        return standalone(question, history, complete).query

    out = []
    with Store.open(dataset_store_dir(dataset, config.size, config.overlap),
                    create=True) as store:
        ingest_and_index(store, [corpus], chosen, config=config, progress=progress)
        for method in chosen:
            out.append(evaluate_conversations(
                store, conversations, method, rewrite, dataset=dataset.name, split=split,
                rewriter="language model" if complete else "rule", seed=seed,
                resamples=resamples))
    return out


def conversations_body(results: Sequence[ConversationEvalResult]) -> dict:
    """The `--json` body: the first method's figures at the top level (n_conversations,
    variants, comparisons), and every method's under "methods"."""
    first = results[0].to_dict()
    return {**first, "methods": {r.method: r.to_dict() for r in results}}


# -- our follow-up set -----------------------------------------------------------

def build_followups(out: Path, faq: Path, manpages: Path, *,
                    conversations: Path = FOLLOWUPS,
                    sections: Sequence[str] = MAN_SECTIONS) -> dict:
    """Write the follow-up set into `out` (see the module docstring); its metadata."""
    out = Path(out)
    rows = []
    for folder, keep in ((Path(faq), None), (Path(manpages), set(sections))):
        path = folder / "corpus.jsonl"
        if not path.is_file():
            raise RagminiError(f"{path} is missing: build it with `ragmini datasets build "
                               f"{'faq' if keep is None else 'manpages'} --out {folder}`")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                doc = json.loads(line)
                if keep is None or doc["_id"].rsplit(".", 1)[-1] in keep:
                    rows.append(doc)
        if keep is None:
            n_faq = len(rows)
    ids = {d["_id"] for d in rows}
    convs = load_conversations(conversations, "all")
    missing = sorted({d for c in convs for t in c.turns for d in t.relevant} - ids)
    if missing:
        raise RagminiError(f"{len(missing)} relevant document(s) of {conversations} are not "
                           f"in the corpus (first: {missing[0]})")
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    _write(out / "corpus.jsonl", "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in rows))
    _write(out / "conversations.jsonl", "".join(
        json.dumps({"_id": c.cid, "turns": [{"question": t.question,
                                             "relevant": sorted(t.relevant)} for t in c.turns],
                    "rewrite": c.rewrite, "split": c.split}, ensure_ascii=False) + "\n"
        for c in convs))
    _write(out / "queries.jsonl", "".join(
        json.dumps({"_id": c.cid, "text": c.rewrite, "metadata": {"split": c.split}}) + "\n"
        for c in convs if c.rewrite))
    for split in ("dev", "test"):
        _write(out / "qrels" / f"{split}.tsv", "query-id\tcorpus-id\tscore\n" + "".join(
            f"{c.cid}\t{d}\t1\n" for c in convs if c.split == split and c.rewrite
            for d in sorted(c.turns[-1].relevant)))
    faq_ids = {d["_id"] for d in rows[:n_faq]}
    meta = {"documents": len(rows), "faq_documents": len(faq_ids),
            "man_sections": list(sections), "conversations": len(convs),
            "splits": {s: sum(c.split == s for c in convs) for s in ("dev", "test")},
            "same_document_followups": sum(bool(c.turns[-1].relevant & c.turns[-2].relevant)
                                           for c in convs)}
    _write(out / "metadata.json", json.dumps(meta, indent=2) + "\n")
    return meta


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
