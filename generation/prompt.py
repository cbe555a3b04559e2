"""Numbered-source prompts that fit the model's context window."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
    input_ids: list[int]  # empty for a server that tokenizes itself (build_messages)
    sources: list[Source]  # those that fit, numbered from 1 in rank order
    dropped: int  # lowest-ranked sources left out to fit the window
    truncated: bool  # the last kept source was cut short to fit
    messages: list[dict] = field(default_factory=list)  # the chat turns (chat models)
    n_tokens: int = 0  # its length in the window: exact, or estimated for a server


def messages(question: str, sources: list[Source]) -> list[dict]:
    """The chat turns every chat model gets, in-process or behind a server.

    One user turn: sources, then the question with a short instruction. The
    model keeps the system prompt it was tuned with. Of the layouts compared on
    SmolLM2-135M (docs/answers-llm.md), this one stayed closest to the sources;
    titles in the block or a custom system prompt made it drift or emit runs of
    bracketed numbers.
    """
    block = "\n\n".join(f"[{s.n}] {s.text}" for s in sources)
    content = f"{block}\n\nUsing the sources above, answer briefly: {question}\n{CITE}"
    return [{"role": "user", "content": content}]


def render(question: str, sources: list[Source], tokenizer, chat: bool) -> str:
    if chat:
        return tokenizer.apply_chat_template(messages(question, sources),
                                             add_generation_prompt=True, tokenize=False)
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
    not fit. `tokenizer` is a Hugging Face tokenizer, or anything with its
    `__call__`, `decode` and `apply_chat_template` (generation/llamacpp.py).
    """
    def size(kept: list[Source]) -> int:
        return len(_encode(render(question, kept, tokenizer, chat), tokenizer))

    def shorten(text: str, room: int) -> str:
        return tokenizer.decode(_encode(text, tokenizer)[:room])

    kept, dropped, truncated = fit(question, sources, budget, size, shorten)
    ids = _encode(render(question, kept, tokenizer, chat), tokenizer)
    return Prompt(ids, kept, dropped, truncated,
                  messages(question, kept) if chat else [], len(ids))


def approx_tokens(text: str) -> int:
    """Tokens `text` may take in a model whose tokenizer we do not have: one per
    three bytes, an overestimate for English BPE vocabularies (about four)."""
    return -(-len(text.encode("utf-8")) // 3)


# What a chat template adds around one user turn (role markers, a default
# system prompt such as SmolLM2's): a generous allowance, as the template is unknown.
CHAT_OVERHEAD = 64


def build_messages(question: str, sources: list[Source], *, budget: int,
                   count=approx_tokens) -> Prompt:
    """The chat turns for a server that applies its own template and tokenizer (an
    OpenAI-compatible API), fitted to `budget` tokens as `count` estimates them."""
    def size(kept: list[Source]) -> int:
        return count(messages(question, kept)[0]["content"]) + CHAT_OVERHEAD

    def shorten(text: str, room: int) -> str:
        return text[: max(0, len(text) * room // max(1, count(text)))]

    kept, dropped, truncated = fit(question, sources, budget, size, shorten)
    return Prompt([], kept, dropped, truncated, messages(question, kept), size(kept))


def fit(question: str, sources: list[Source], budget: int, size, shorten
        ) -> tuple[list[Source], int, bool]:
    """(kept sources, dropped count, truncated) such that `size(kept) <= budget`.

    `size(sources)` is the prompt's length in tokens; `shorten(text, n)` cuts a
    text to about `n` tokens.
    """
    kept = list(sources)
    while True:
        if size(kept) <= budget:
            return kept, len(sources) - len(kept), False
        if len(kept) <= 1:
            break
        kept.pop()
    if not kept:
        raise QueryError(f"the question alone is longer than the model's window ({budget} tokens)")
    # One source, still too long: cut its text by the overflow, in tokens.
    best = kept[0]
    room = budget - size([_with_text(best, "")])
    while room > 0:
        cut = _with_text(best, shorten(best.text, room))
        n = size([cut])
        if n <= budget:
            return [cut], len(sources) - 1, True
        room -= max(1, n - budget)  # re-tokenising at the seam can add a token or two
    raise QueryError(
        f"the question is too long for the model's window ({budget} tokens after leaving "
        "room for the answer); shorten it or lower max_new_tokens", param="max_new_tokens"
    )


def _with_text(source: Source, text: str) -> Source:
    return replace(source, chunk=replace(source.chunk, text=text))
