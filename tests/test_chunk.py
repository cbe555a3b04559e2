"""Chunking in MiniLM tokens, with overlap and exact character spans."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import RagminiError
from ingest.chunk import Chunk, ChunkConfig, Chunker, load_fast_tokenizer, locate
from tests.conftest import CORPUS

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


# -- one tokenization per document: the same guarantees, checked exactly ---------


@pytest.fixture(scope="module")
def fast():
    return load_fast_tokenizer()


def real_count(tok, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=False).ids)


def check_chunks(tok, text: str, chunks: list[Chunk], config: ChunkConfig) -> None:
    """Every guarantee a chunk list makes about `text`, with the tokenizer's own count."""
    assert [c.position for c in chunks] == list(range(len(chunks)))
    covered = 0
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.n_tokens == real_count(tok, c.text), c.text
        assert c.n_tokens <= config.size
        assert not text[covered:c.start].strip(), "text between chunks was lost"
        covered = max(covered, c.end)
    assert not text[covered:].strip()
    for a, b in zip(chunks, chunks[1:]):
        assert a.start <= b.start and a.end <= b.end
        if b.start < a.end:  # shared text: at most `overlap` tokens, whole words
            assert real_count(tok, text[b.start:a.end]) <= config.overlap


@pytest.mark.parametrize("size,overlap", [(200, 30), (100, 20), (32, 0), (16, 8)])
def test_bundled_corpus_chunks_keep_every_guarantee(fast, size, overlap):
    from ingest.load import load_paths

    config = ChunkConfig(size=size, overlap=overlap)
    docs = load_paths([CORPUS]).documents
    chunker = Chunker(fast, config)
    for doc, chunks in zip(docs, chunker.split_many([d.text for d in docs])):
        check_chunks(fast, doc.text, chunks, config)
        if overlap and len(chunks) > 1:
            # real overlap: most neighbours share text (not only whole pieces)
            shared = sum(b.start < a.end for a, b in zip(chunks, chunks[1:]))
            assert shared >= (len(chunks) - 1) // 2


def test_fast_and_transformers_tokenizers_chunk_alike(tokenizer, fast):
    config = ChunkConfig(size=60, overlap=15)
    assert Chunker(tokenizer, config).split(TEXT) == Chunker(fast, config).split(TEXT)


def test_one_tokenizer_call_per_batch_not_per_piece(fast):
    """The splitter used to measure every candidate piece with its own call (781,023
    calls for 73,100 chunks); now new words are counted once per batch."""
    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def encode(self, *args, **kwargs):
            self.calls += 1
            return self.inner.encode(*args, **kwargs)

    chunker = Chunker(fast, ChunkConfig(size=60, overlap=15))
    chunker._rust = counting = Counting(chunker._rust)
    texts = [TEXT.replace("number", f"number{i}") for i in range(40)]
    chunks = chunker.split_many(texts)
    assert sum(map(len, chunks)) > 400
    assert counting.calls == 1
    chunker.split_many(texts)  # every word known: no call at all
    assert counting.calls == 1


def test_pieces_end_at_paragraph_breaks_first(fast):
    paragraphs = [" ".join(f"word{p}x{i}" for i in range(12)) + "." for p in range(30)]
    text = "\n\n".join(paragraphs)
    chunks = Chunker(fast, ChunkConfig(size=100, overlap=0)).split(text)
    assert len(chunks) > 3
    for c in chunks:
        assert c.end == len(text) or text[c.end:c.end + 2] == "\n\n"
        assert c.text[0] == "w"  # starts at a paragraph, never inside one


def test_sentence_ends_when_a_paragraph_is_too_long(fast):
    text = " ".join(f"Sentence {i} says something short and plain." for i in range(80))
    chunks = Chunker(fast, ChunkConfig(size=64, overlap=0)).split(text)
    assert all(c.text.endswith(".") for c in chunks)


def test_long_url_is_cut_between_its_words(fast):
    url = "https://example.org/" + "/".join(f"segment{i}" for i in range(120))
    text = f"See {url} for details."
    config = ChunkConfig(size=32, overlap=8)
    chunks = Chunker(fast, config).split(text)
    check_chunks(fast, text, chunks, config)
    inside = [c for c in chunks if c.text != text and url.find(c.text) > 0]
    assert inside and all(c.text.startswith("/") or c.text[0].isalnum() for c in inside)


def test_text_the_tokenizer_drops_still_becomes_a_chunk(fast):
    (chunk,) = Chunker(fast).split("  \ufffd\ufffd  ")
    assert (chunk.text, chunk.start, chunk.end, chunk.n_tokens) == ("\ufffd\ufffd", 2, 4, 0)
    assert Chunker(fast).split(" \n\t ") == []


def test_page_spans_follow_the_chunk_spans(fast):
    pages = [" ".join(f"page{p} word{i}." for i in range(60)) for p in range(1, 6)]
    text = "\n\n".join(pages)
    locations, offset = [], 0
    for number, page in enumerate(pages, 1):
        locations.append((offset, str(number)))
        offset += len(page) + 2
    chunks = locate(Chunker(fast, ChunkConfig(size=100, overlap=20)).split(text),
                    tuple(locations), "page")
    starts = [o for o, _ in locations]

    def page_of(char: int) -> int:
        return max(i for i, o in enumerate(starts) if o <= char) + 1

    assert {c.page_start for c in chunks} == {1, 2, 3, 4, 5}
    for c in chunks:
        assert (c.page_start, c.page_end) == (page_of(c.start), page_of(c.end - 1))
    assert any(c.page_start != c.page_end for c in chunks)  # overlap crosses page breaks


# Words, punctuation, whitespace of every kind the BERT tokenizer knows (and two it
# does not count as whitespace), CJK, accents, U+FFFD, runs longer than a piece.
_PIECES = st.sampled_from([
    "word", "Tokenisation", "embeddings", "x" * 120, "naïve", "cafe\u0301", "東京", "ß",
    ".", ",", "...", "(", "https://a.example/b/c?d=e", "don't", "e.g.", "\ufffd", "\u200b",
    "1.5", "—", "🙂", "Ǆ", "İ",
])
_SPACES = st.sampled_from([" ", " ", " ", "\n", "\n\n", "\t", "\u3000", "\u00a0", "\u2028",
                           "\x85", ". ", "  "])


@st.composite
def texts(draw) -> str:
    parts = draw(st.lists(st.tuples(_PIECES, _SPACES), min_size=0, max_size=400))
    return "".join(p + s for p, s in parts)


@settings(max_examples=int(os.environ.get("RAGMINI_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=list(HealthCheck))
@given(text=texts(), size=st.integers(16, 80), ratio=st.sampled_from([0, 0.25, 0.5]))
def test_any_text_keeps_every_guarantee(fast, text, size, ratio):
    config = ChunkConfig(size=size, overlap=int(size * ratio))
    check_chunks(fast, text, Chunker(fast, config).split(text), config)
