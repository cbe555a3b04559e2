"""Split documents into overlapping chunks measured in the encoder's own tokens.

Lengths are counted with the SBERT (MiniLM) WordPiece tokenizer because that
encoder silently truncates anything past 256 tokens: a chunk measured in
characters or words could lose its tail without anyone noticing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragmini.errors import RagminiError

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
            raise RagminiError(f"chunk size {self.size} is too small; use at least 16 tokens")
        if self.size > ENCODER_MAX_TOKENS:
            raise RagminiError(
                f"chunk size {self.size} is over the encoder's limit: all-MiniLM-L6-v2 reads "
                f"at most 256 tokens ({ENCODER_MAX_TOKENS} of text), and would silently "
                f"drop the rest; use --chunk-size {ENCODER_MAX_TOKENS} or less"
            )
        if not 0 <= self.overlap < self.size:
            raise RagminiError(
                f"overlap {self.overlap} must be at least 0 and below the chunk size {self.size}"
            )


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    start: int  # character span [start, end) in the document's text
    end: int
    n_tokens: int


def load_tokenizer() -> PreTrainedTokenizerBase:
    """The packaged MiniLM tokenizer (fast, local, no model weights loaded)."""
    from transformers import AutoTokenizer

    from ragmini.models import minilm_dir

    return AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)


class Chunker:
    """Splits text with langchain's recursive splitter, sized by `tokenizer`.

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
            chunk_size=config.size,
            chunk_overlap=config.overlap,
            separators=["\n\n", "\n", ". ", " ", ""],
            keep_separator="end",
            strip_whitespace=True,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.tokenize(text))

    def split(self, text: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        cursor = 0
        for piece in self._splitter.split_text(text):
            # The splitter strips whitespace but never rewrites characters, so
            # each piece occurs verbatim; overlap means it may start before the
            # previous piece ends, never before the previous piece starts.
            start = text.find(piece, cursor)
            if start < 0:  # defensive: fall back to a search from the top
                start = text.find(piece)
            chunks.append(
                Chunk(
                    position=len(chunks),
                    text=piece,
                    start=start,
                    end=start + len(piece),
                    n_tokens=self.count_tokens(piece),
                )
            )
            cursor = start + 1
        return chunks
