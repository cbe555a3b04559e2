"""Chunking in MiniLM tokens, with overlap and exact character spans."""

from __future__ import annotations

import pytest

from ingest.chunk import ChunkConfig, Chunker
from core.errors import RagminiError

TEXT = " ".join(
    f"Sentence number {i} talks about embeddings, retrieval and tokenisation in turn."
    for i in range(120)
)


def test_chunks_respect_size_and_overlap(tokenizer):
    chunker = Chunker(tokenizer, ChunkConfig(size=60, overlap=15))
    chunks = chunker.split(TEXT)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 60 for c in chunks)
    assert all(c.n_tokens == len(tokenizer.tokenize(c.text)) for c in chunks)
    for c in chunks:
        assert TEXT[c.start : c.end] == c.text
    # Overlap: each chunk starts inside the previous one, sharing up to 15 tokens.
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start < a.end
        shared = TEXT[b.start : a.end]
        assert 8 <= len(tokenizer.tokenize(shared)) <= 15
    assert [c.position for c in chunks] == list(range(len(chunks)))
    # Together the chunks cover the whole text.
    assert chunks[0].start == 0 and chunks[-1].end == len(TEXT)


def test_long_word_without_spaces_is_still_split(tokenizer):
    chunker = Chunker(tokenizer, ChunkConfig(size=32, overlap=0))
    chunks = chunker.split("x" * 2000)
    assert all(c.n_tokens <= 32 for c in chunks)
    assert "".join(c.text for c in chunks) == "x" * 2000


@pytest.mark.parametrize("size,overlap,message", [
    (300, 30, "over the encoder's limit"),
    (8, 0, "too small"),
    (100, 51, "at most half the chunk size"),
    (100, -1, "at least 0"),
])
def test_bad_configs_are_refused(size, overlap, message):
    with pytest.raises(RagminiError, match=message):
        ChunkConfig(size=size, overlap=overlap)
