"""Ask a store a question: retrieve, decide whether to answer, write, check support.

The one entry point behind `ragmini ask`, the HTTP API and `eval answers`:
retrieval finds the sources, the abstention model (abstain.py) decides from the
retrieval evidence whether the store holds an answer, a generator writes one,
and every sentence is scored against the sources it cites (support.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import IndexStale, QueryError
from generation.abstain import decide, evidence, load_model
from generation.answer import ABSTAIN_TEXT, Answer, Sampling, answer
from generation.followup import Complete, standalone
from generation.models import ExtractiveGenerator, Generator
from generation.prompt import Source
from ingest.store import Store
from retrieval.contract import Embedder, check_queries, search_one
from retrieval.methods import (
    DEFAULT_METHOD,
    ENCODER,
    check_method,
    get_embedder,
    select,
)
from retrieval.searchers import open_cached

EVIDENCE_DEPTH = 10
LEXICAL = "bm25"  # the ranking abstention compares with the dense one


@dataclass
class AskResult:
    answer: Answer
    method: str
    behind: int  # store commits the index lags (an ingest is running or was killed)
    searched_for: str = ""  # the standalone query retrieval searched ("" = the question)
    rewrite: str = "as asked"  # how the query was made from the history (followup.py)

    def to_dict(self) -> dict:
        return {**self.answer.to_dict(), "method": self.method,
                "searched_for": self.searched_for or self.answer.question,
                "rewrite": self.rewrite}


def ask(store: Store, question: str, generator: Generator | ExtractiveGenerator, *,
        method: str = DEFAULT_METHOD, k: int = 3, sampling: Sampling = Sampling(),
        strict: bool = True, abstain: bool = True,
        embedders: dict[str, Embedder] | None = None,
        on_text: Callable[[str], None] | None = None, where=None,
        history: Sequence[dict] | None = None, rewriter: Complete | None = None) -> AskResult:
    """Answer `question` from the store's top-`k` chunks by `method`.

    With `abstain`, a question the retrieval evidence says the store cannot
    answer gets "The documents do not answer this." and the closest sources,
    and no text is generated. `embedders` may hold already-loaded embedders by
    method name (the server keeps them warm); the sentence encoder is loaded
    once otherwise. `where` (`--where` strings): answer from the matching
    documents only; abstention then asks whether they hold the answer.

    `history` (earlier turns, oldest first, each {"question", "answer"}) makes a
    follow-up standalone before retrieval (generation/followup.py): by
    `rewriter(messages) -> str` when given, else by the generator's own
    `complete` when it has one (a chat model behind an OpenAI-compatible API),
    else by the rule. The result's `searched_for` is the query searched.
    """
    check_queries([question], k)
    check_method(method)
    rewriter = rewriter or getattr(generator, "complete", None)
    made = standalone(question, history, rewriter)
    query = made.query
    allowed = select(store, where)
    embedders = dict(embedders or {})
    searcher = open_cached(store, method, embedders)
    hits = search_one(searcher, query, k, allowed)
    encoder = embedders.get(ENCODER) or getattr(searcher, "embedder", None)
    if encoder is None or getattr(encoder, "name", ENCODER) != ENCODER:
        encoder = get_embedder(ENCODER, store)
    embedders[ENCODER] = encoder
    decision, notes = None, []
    if abstain:
        decision, note = _decide(store, query, embedders, allowed)
        if note:
            notes.append(note)
        if decision is not None and not decision.answer:
            sources = [Source(i, h.chunk) for i, h in enumerate(hits, 1)]
            return AskResult(Answer(question, ABSTAIN_TEXT, [], [], sources, generator.name, 0, 0,
                                    notes, abstained=True, abstain_score=decision.score,
                                    abstain_threshold=decision.threshold),
                             method, searcher.behind, query, made.how)
    # The extractive answer ranks sentences against what was searched (a rule's
    # query carries the topic the follow-up leaves out); a language model reads
    # the question as asked, or the LLM's own standalone rewrite.
    writes = getattr(generator, "needs_model", True)
    asked = query if not writes or made.how.startswith("rewritten") else question
    result = answer(asked, hits, generator, sampling, embed=encoder.embed, strict=strict,
                    on_text=on_text)
    if asked != question:
        from dataclasses import replace

        result = replace(result, question=question)
    if decision is not None:
        result = _with(result, notes, decision)
    return AskResult(result, method, searcher.behind, query, made.how)


def _decide(store: Store, question: str, embedders: dict, allowed=None):
    """The abstention decision, or None (and why) when a ranking it reads is missing."""
    model = load_model()
    try:
        # The abstention model was calibrated on the encoder's ranking, whatever
        # method ranks the sources.
        dense = search_one(open_cached(store, ENCODER, embedders), question,
                           EVIDENCE_DEPTH, allowed)
        lexical = None
        if model.reads_lexical:
            try:
                lexical = search_one(open_cached(store, LEXICAL, embedders), question,
                                     EVIDENCE_DEPTH, allowed)
            except QueryError:  # no word of the question is in the corpus
                lexical = []
    except IndexStale as exc:
        needed = LEXICAL if LEXICAL in str(exc) else ENCODER
        return None, (f"abstention is off: it reads the {ENCODER} and {LEXICAL} indexes "
                      f"(ingest with --methods {needed})")
    ev = evidence(question, dense, lexical, embedders[ENCODER].embed, signals=model.features)
    return decide(ev, model=model), None


def _with(result: Answer, notes: list[str], decision) -> Answer:
    from dataclasses import replace

    return replace(result, notes=notes + result.notes, abstain_score=decision.score,
                   abstain_threshold=decision.threshold)
