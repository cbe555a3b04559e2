"""Numbered-source prompts that fit the model's context window."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.errors import QueryError
from ingest.store import ChunkRow, OfChunk

INSTRUCTIONS = (
    "Answer the question briefly using only the numbered sources. "
    "Cite each source you use by its number in square brackets, like [1]. "
    "If the sources do not contain the answer, say that you do not know."
)
CITE = "Cite sources like [1]."


@dataclass(frozen=True)
class Source(OfChunk):
    """A chunk as the prompt numbers it. The chunk is the store's record, passed
    on from the search hit, so its fields reach the citation unchanged."""

    n: int  # the number the prompt gives it, 1-based
    chunk: ChunkRow

    def to_dict(self) -> dict:
        """The `ask --json` source entry."""
        return {"n": self.n, "doc_id": self.doc_id, "source": self.source,
                "chunk_id": self.chunk_id, "title": self.title, "text": self.text,
                **self.chunk.location_fields()}


@dataclass(frozen=True)
class Prompt:
    input_ids: list[int]
    sources: list[Source]  # those that fit, numbered from 1 in rank order
    dropped: int  # lowest-ranked sources left out to fit the window
    truncated: bool  # the last kept source was cut short to fit


def render(question: str, sources: list[Source], tokenizer, chat: bool) -> str:
    if chat:
        # One user turn: sources, then the question with a short instruction.
        # The model keeps the system prompt it was tuned with. Of the layouts
        # compared on SmolLM2-135M (docs/answers.md), this one stayed
        # closest to the sources; titles in the block or a custom system prompt
        # made it drift or emit runs of bracketed numbers.
        block = "\n\n".join(f"[{s.n}] {s.text}" for s in sources)
        content = f"{block}\n\nUsing the sources above, answer briefly: {question}\n{CITE}"
        messages = [{"role": "user", "content": content}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # GPT-2-family models have no chat template: a plain document they continue.
    block = "\n\n".join(f"[{s.n}] {s.title}\n{s.text}" for s in sources)
    return f"{INSTRUCTIONS}\n\nSources:\n\n{block}\n\nQuestion: {question}\nAnswer:"


def _encode(text: str, tokenizer) -> list[int]:
    # Chat templates already contain the special tokens they need.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def build_prompt(question: str, sources: list[Source], tokenizer, *, chat: bool,
                 budget: int) -> Prompt:
    """Fit `question` and as many of `sources` (best first) as `budget` tokens allow.

    Lowest-ranked sources are dropped first; if the best one alone is still too
    long, its text is cut to fit. Raises QueryError if the question alone does
    not fit.
    """
    kept = list(sources)
    while True:
        ids = _encode(render(question, kept, tokenizer, chat), tokenizer)
        if len(ids) <= budget:
            return Prompt(ids, kept, len(sources) - len(kept), truncated=False)
        if len(kept) <= 1:
            break
        kept.pop()
    if not kept:
        raise QueryError(f"the question alone is longer than the model's window ({budget} tokens)")
    # One source, still too long: cut its text by the overflow, in tokens.
    best = kept[0]
    text_ids = _encode(best.text, tokenizer)
    bare = _encode(render(question, [_with_text(best, "")], tokenizer, chat), tokenizer)
    room = budget - len(bare)
    while room > 0:
        cut = _with_text(best, tokenizer.decode(text_ids[:room]))
        ids = _encode(render(question, [cut], tokenizer, chat), tokenizer)
        if len(ids) <= budget:
            return Prompt(ids, [cut], len(sources) - 1, truncated=True)
        room -= max(1, len(ids) - budget)  # re-tokenising at the seam can add a token or two
    raise QueryError(
        f"the question is too long for the model's window ({budget} tokens after leaving "
        "room for the answer); shorten it or lower max_new_tokens", param="max_new_tokens"
    )


def _with_text(source: Source, text: str) -> Source:
    return replace(source, chunk=replace(source.chunk, text=text))
