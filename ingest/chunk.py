"""Split documents into overlapping chunks measured in the encoder's own tokens.

Lengths are counted with the SBERT (MiniLM) WordPiece tokenizer because that
encoder silently truncates anything past 256 tokens: a chunk measured in
characters or words could lose its tail without anyone noticing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import RagminiError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# MiniLM reads 256 positions, two of which are [CLS] and [SEP].
ENCODER_MAX_TOKENS = 254


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


class Chunker:
    """Splits text into chunks of at most `config.size` tokens that overlap.

    langchain's recursive splitter finds natural boundaries (paragraphs, lines,
    sentences, words) for pieces of `size - overlap` tokens. Its own overlap
    only repeats whole pieces, so with sentences longer than the overlap it
    repeats nothing (0 of 38 neighbouring chunks of the bundled corpus shared
    text at 200/30). Each chunk is therefore extended back over the previous
    piece's last `overlap` tokens, starting at a word boundary.

    Example:
        >>> chunker = Chunker(load_tokenizer(), ChunkConfig(size=200, overlap=30))
        >>> [c.n_tokens <= 200 for c in chunker.split(long_text)]
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: ChunkConfig = ChunkConfig()):
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.config = config
        self._tokenizer = tokenizer
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=config.size - config.overlap,
            chunk_overlap=0,
            separators=["\n\n", "\n", ". ", " ", ""],
            keep_separator="end",
            strip_whitespace=True,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.tokenize(text))

    def _pieces(self, text: str) -> list[tuple[int, int]]:
        spans = []
        cursor = 0
        for piece in self._splitter.split_text(text):
            # The splitter strips whitespace but never rewrites characters, so
            # each piece occurs verbatim, in order, at or after the cursor.
            start = text.find(piece, cursor)
            if start < 0:  # defensive: never expected
                start = text.find(piece)
            spans.append((start, start + len(piece)))
            cursor = start + len(piece)
        return spans

    def _tail_start(self, text: str, start: int, end: int) -> int:
        """Where the last `overlap` tokens of text[start:end] begin, at a word start."""
        piece = text[start:end]
        offsets = self._tokenizer(piece, add_special_tokens=False,
                                  return_offsets_mapping=True)["offset_mapping"]
        if not offsets:
            return end
        cut = offsets[max(0, len(offsets) - self.config.overlap)][0]
        while 0 < cut < len(piece) and not piece[cut - 1].isspace():
            cut += 1  # inside a word: move forward (fewer tokens, never more)
        return start + cut

    def split(self, text: str) -> list[Chunk]:
        spans = self._pieces(text)
        chunks: list[Chunk] = []
        for i, (start, end) in enumerate(spans):
            n_tokens = self.count_tokens(text[start:end])
            if i and self.config.overlap:
                begin = self._tail_start(text, *spans[i - 1])
                extended = self.count_tokens(text[begin:end])
                # Joining at a word boundary adds no tokens for WordPiece; a
                # piece cut mid-word could, so check before keeping the overlap.
                if begin < start and extended <= self.config.size:
                    start, n_tokens = begin, extended
            chunks.append(Chunk(len(chunks), text[start:end], start, end, n_tokens))
        return chunks
