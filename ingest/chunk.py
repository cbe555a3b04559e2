"""Split documents into overlapping chunks measured in the encoder's own tokens.

Lengths are counted with the SBERT (MiniLM) WordPiece tokenizer because that
encoder silently truncates anything past 256 tokens: a chunk measured in
characters or words could lose its tail without anyone noticing.

Each document is tokenized once, with character offsets, in a batched call
(`tokenizers` runs the batch in Rust); pieces are then cut from that token
list at the last paragraph break, line break, sentence end or space that fits.
The previous splitter (langchain's recursive splitter measuring every
candidate piece with its own tokenizer call) spent 124 of 244 s of a 73,100-
chunk ingest in 781,023 one-string tokenizer calls; `bench/ingest.py` measures
both.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from itertools import accumulate
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import RagminiError

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

# MiniLM reads 256 positions, two of which are [CLS] and [SEP].
ENCODER_MAX_TOKENS = 254
# Where a piece may end, best first, and how much of the separator stays with
# the piece before it (the "." of a sentence end; whitespace is dropped).
SEPARATORS = (("\n\n", 0), ("\n", 0), (". ", 1), (" ", 0))
# Characters per batched tokenizer call: large enough that per-call overhead
# vanishes, small enough that offsets of one batch stay a few MB.
BATCH_CHARS = 1 << 20
MAX_CACHED_WORDS = 1 << 21  # distinct words counted before the cache starts over


@dataclass(frozen=True)
class ChunkConfig:
    """Chunk size and overlap in tokens of `tokenizer` (a recorded name)."""

    size: int = 200
    overlap: int = 30
    tokenizer: str = "all-MiniLM-L6-v2"

    def __post_init__(self) -> None:
        if self.size < 16:
            raise RagminiError(f"chunk size {self.size} is too small; use at least 16 tokens",
                               param="chunk_size")
        if self.size > ENCODER_MAX_TOKENS:
            raise RagminiError(
                f"chunk size {self.size} is over the encoder's limit: all-MiniLM-L6-v2 reads "
                f"at most 256 tokens ({ENCODER_MAX_TOKENS} of text), and would silently "
                f"drop the rest; use a chunk size of {ENCODER_MAX_TOKENS} or less",
                param="chunk_size")
        if not 0 <= self.overlap <= self.size // 2:
            raise RagminiError(
                f"overlap {self.overlap} must be at least 0 and at most half the chunk size "
                f"{self.size}"
            )


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    start: int  # character span [start, end) in the document's text
    end: int
    n_tokens: int
    page_start: int | None = None  # PDF pages the span covers (1-based)
    page_end: int | None = None
    section: str | None = None  # the heading the span starts under (DOCX, EPUB, ODT)


def locate(chunks: list[Chunk], locations: tuple[tuple[int, str], ...], kind: str
           ) -> list[Chunk]:
    """Chunks with the pages they span (kind "page") or the section they start in
    (kind "section"), from the document's sorted (offset, label) locations."""
    from bisect import bisect_right
    from dataclasses import replace

    if not locations:
        return chunks
    starts = [offset for offset, _ in locations]
    out = []
    for c in chunks:
        first = max(bisect_right(starts, c.start) - 1, 0)
        if kind == "page":
            last = max(bisect_right(starts, max(c.end - 1, c.start)) - 1, first)
            out.append(replace(c, page_start=int(locations[first][1]),
                               page_end=int(locations[last][1])))
        else:
            inside = bisect_right(starts, c.start) - 1
            out.append(replace(c, section=locations[inside][1] if inside >= 0 else None))
    return out


def load_tokenizer() -> PreTrainedTokenizerBase:
    """The packaged MiniLM tokenizer (fast, local, no model weights loaded)."""
    from transformers import AutoTokenizer

    from core.models import minilm_dir

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    # This tokenizer only counts tokens of whole documents; it never feeds the
    # model, so the 512-token warning for long inputs does not apply.
    tokenizer.model_max_length = 1 << 40
    return tokenizer


def load_fast_tokenizer() -> Tokenizer:
    """The same MiniLM tokenizer as a `tokenizers.Tokenizer`, all the chunker needs:
    it loads in a fraction of a second, where importing transformers for
    `load_tokenizer` takes seconds."""
    from tokenizers import Tokenizer

    from core.models import minilm_dir

    return _plain(Tokenizer.from_file(str(minilm_dir() / "tokenizer.json")))


def _plain(tokenizer: PreTrainedTokenizerBase | Tokenizer) -> Tokenizer:
    """A copy of the Rust tokenizer (behind a transformers one), without the padding
    and truncation to 128 that the packaged tokenizer.json sets: we want every
    token of a document."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    plain = Tokenizer.from_str(backend.to_str())
    plain.no_padding()
    plain.no_truncation()
    return plain


class Chunker:
    """Splits text into chunks of at most `config.size` tokens that overlap.

    Pieces of at most `size - overlap` tokens are cut at natural boundaries: the
    last paragraph break that fits, else the last line break, sentence end or
    space (any whitespace as a last resort). Each chunk is then extended back
    over the previous piece's last `overlap` tokens, starting at a word, so
    neighbouring chunks share real text. A run without whitespace longer than
    a piece (a long URL) is cut between its tokenizer words, and inside a word
    only as a last resort; such parts do not overlap.

    Counting: the MiniLM tokenizer (BERT normalizer, whitespace-and-punctuation
    pre-tokenizer, WordPiece) tokenizes each whitespace-separated word on its
    own, so a span's tokens are the sum of its words' tokens. Words are found
    with one regular expression over the text, and each distinct word is
    tokenized once per `Chunker` (in one batched call per batch of documents,
    then cached): no tokenizer call per candidate piece.

    Example:
        >>> chunker = Chunker(load_fast_tokenizer(), ChunkConfig(size=200, overlap=30))
        >>> [c.n_tokens <= 200 for c in chunker.split(long_text)]
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase | Tokenizer,
                 config: ChunkConfig = ChunkConfig()):
        self.config = config
        self._rust = _plain(tokenizer)
        self._counts: dict[str, int] = {}  # word -> tokens, for words seen so far

    def count_tokens(self, text: str) -> int:
        return len(self._rust.encode(text, add_special_tokens=False).ids)

    def split(self, text: str) -> list[Chunk]:
        return self.split_many([text])[0]

    def split_many(self, texts: Iterable[str]) -> list[list[Chunk]]:
        return list(self.split_iter(texts))

    def split_iter(self, texts: Iterable[str]) -> Iterator[list[Chunk]]:
        """Each text's chunks, in order; new words are counted in one tokenizer call
        per batch of about BATCH_CHARS characters."""
        batch: list[str] = []
        size = 0
        for text in texts:
            batch.append(text)
            size += len(text)
            if size >= BATCH_CHARS:
                yield from self._split_batch(batch)
                batch, size = [], 0
        if batch:
            yield from self._split_batch(batch)

    def _split_batch(self, texts: list[str]) -> list[list[Chunk]]:
        found = [_words(text) for text in texts]
        self._count_new([w for _, _, words in found for w in words])
        counts = self._counts
        out = []
        for text, (starts, ends, words) in zip(texts, found):
            cum = list(accumulate(map(counts.__getitem__, words), initial=0))
            out.append(self._chunks(text, _Words(starts, ends, cum)))
        if len(counts) > MAX_CACHED_WORDS:
            counts.clear()
        return out

    def _count_new(self, words: list[str]) -> None:
        """Tokenize the words not counted yet, joined by spaces in one call (the
        same tokens as one call per word: spaces separate BERT words)."""
        import numpy as np

        new = list(set(words).difference(self._counts))
        if not new:
            return
        offsets = self._rust.encode(" ".join(new), add_special_tokens=False).offsets
        lengths = np.fromiter(map(len, new), dtype=np.int64, count=len(new))
        word_starts = np.concatenate(([0], np.cumsum(lengths[:-1] + 1)))
        token_starts = np.fromiter((s for s, _ in offsets), dtype=np.int64, count=len(offsets))
        owner = np.searchsorted(word_starts, token_starts, side="right") - 1
        self._counts.update(zip(new, np.bincount(owner, minlength=len(new)).tolist()))

    # -- cutting ------------------------------------------------------------

    def _chunks(self, text: str, words: _Words) -> list[Chunk]:
        overlap = self.config.overlap
        chunks: list[Chunk] = []
        prev: tuple[int, int, int] | None = None  # previous piece: first word, end word, start
        for first, stop, piece_start, end, n_tokens in self._pieces(text, words):
            start = piece_start
            tail = self._tail(words, *prev) if prev and overlap and stop > first else None
            if tail is not None and tail[0] < start and n_tokens + tail[1] <= self.config.size:
                start, n_tokens = tail[0], n_tokens + tail[1]
            chunks.append(Chunk(len(chunks), text[start:end], start, end, n_tokens))
            # a part of one long word has no word boundary to overlap from
            prev = (first, stop, piece_start) if stop > first else None
        return chunks

    def _tail(self, words: _Words, first: int, stop: int, start: int) -> tuple[int, int] | None:
        """Where the piece of words first..stop (starting at char `start`) has its
        last `overlap` tokens, from a word start on, and their count; None when
        its last word alone is longer."""
        cum = words.cum
        w = bisect_left(cum, cum[stop] - self.config.overlap, first, stop)
        if w >= stop:
            return None
        return (start if w == first else words.starts[w]), cum[stop] - cum[w]

    def _pieces(self, text: str, words: _Words) -> Iterator[tuple[int, int, int, int, int]]:
        """(first word, end word, start char, end char, tokens) of each piece, in
        order; a part of one long word has first == end word."""
        budget = self.config.size - self.config.overlap
        starts, ends, cum = words.starts, words.ends, words.cum
        n = len(starts)
        i = 0
        while i < n:
            if cum[n] - cum[i] <= budget:
                yield i, n, starts[i], ends[n - 1], cum[n] - cum[i]
                return
            j = bisect_right(cum, cum[i] + budget, i, n + 1) - 1  # words i..j fit
            if j > i:
                end = _separator_cut(text, starts[i], starts[j])
                stop = j if end is None else bisect_left(starts, end, i, j)
                yield i, stop, starts[i], ends[stop - 1], cum[stop] - cum[i]
                i = stop
            else:  # one word longer than a piece
                yield from ((i, i, a, b, t) for a, b, t in
                            self._word_parts(text, starts[i], ends[i], budget))
                i += 1

    def _word_parts(self, text: str, start: int, end: int, budget: int
                    ) -> Iterator[tuple[int, int, int]]:
        """(start, end, tokens) of consecutive parts of text[start:end], a run
        without whitespace, each at most `budget` tokens: cut between the
        tokenizer's words (after a "/" of a URL, say), or inside a word as a last
        resort."""
        enc = self._rust.encode(text[start:end], add_special_tokens=False)
        offsets, owner = enc.offsets, enc.word_ids
        n, i, cur = len(offsets), 0, start
        while i < n:
            if n - i <= budget:
                yield cur, end, n - i
                return
            stop = next((k for k in range(i + budget, i, -1) if owner[k - 1] != owner[k]), i)
            if stop > i:
                cut = start + offsets[stop][0]
                yield cur, cut, stop - i
            else:  # one tokenizer word longer than a piece
                stop = next(k for k in range(i + budget, n + 1)
                            if k == n or owner[k - 1] != owner[k])
                cut = start + offsets[stop][0] if stop < n else end
                yield from self._bisected(text, cur, cut, budget)
            cur, i = cut, stop

    def _bisected(self, text: str, start: int, end: int, budget: int
                  ) -> Iterator[tuple[int, int, int]]:
        """Parts of one tokenizer word, each the longest prefix of what is left that
        tokenizes to at most `budget` tokens on its own (by bisection)."""
        while start < end:
            lo, hi = start + 1, end
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.count_tokens(text[start:mid]) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            yield start, lo, self.count_tokens(text[start:lo])
            start = lo


@dataclass(frozen=True)
class _Words:
    """A text's whitespace-separated words: character spans, and cum[k] = tokens
    of the words before word k (so words i..j hold cum[j] - cum[i] tokens)."""

    starts: list[int]
    ends: list[int]
    cum: list[int]


# Whitespace as the MiniLM (BERT) tokenizer splits on it: Unicode White_Space
# less the control characters its normalizer deletes (U+0085, vertical tab and
# form feed join the characters around them). Python's isspace differs.
_SPACE_CHARS = ("\t\n\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200b)))
                + "\u2028\u2029\u202f\u205f\u3000")
_LAST_SPACE = max(map(ord, _SPACE_CHARS))
_WORD = re.compile(f"[^{re.escape(_SPACE_CHARS)}]+")


@functools.cache
def _space_table():
    """Is code point c whitespace? for c up to _LAST_SPACE + 1 (any later one: no)."""
    import numpy as np

    table = np.zeros(_LAST_SPACE + 2, dtype=bool)
    table[[ord(c) for c in _SPACE_CHARS]] = True
    return table


def _is_space(char: str) -> bool:
    return char in _SPACE_CHARS


def _words(text: str) -> tuple[list[int], list[int], list[str]]:
    """The spans and strings of `text`'s whitespace-separated words."""
    import numpy as np

    words = _WORD.findall(text)
    if not words:
        return [], [], []
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    space = _space_table()[np.minimum(codes, _LAST_SPACE + 1)]
    edges = np.diff(np.concatenate(([True], space, [True])).view(np.int8))
    return np.flatnonzero(edges == -1).tolist(), np.flatnonzero(edges == 1).tolist(), words


def _separator_cut(text: str, start: int, hi: int) -> int | None:
    """Where a piece starting at `start` best ends at or before `hi`: after the
    last paragraph break, else line break, sentence end or space (trailing
    whitespace left out); None when there is none."""
    for sep, kept in SEPARATORS:
        at = text.rfind(sep, start, hi - kept + len(sep))
        if at >= 0:
            end = at + kept
            while end > start and _is_space(text[end - 1]):
                end -= 1
            if end > start:
                return end
    return None
