"""Shared fixtures: real packaged models loaded once per session, hermetic paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Before any Hugging Face import: no test may reach for a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("RAGMINI_ALLOW_DOWNLOAD", None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# As the CLI sets it; in-process CLI tests import transformers before main() runs.
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

REPO = Path(__file__).resolve().parents[1]


def keyword_vectors(texts: list[str], keywords: tuple[str, ...]):
    """A tiny real embedder for tests: one dimension per keyword the text contains,
    plus one for "none of them", unit norm."""
    import numpy as np

    rows = []
    for text in texts:
        v = np.array([float(k in text.lower()) for k in keywords] + [0.0], dtype=np.float32)
        if not v.any():
            v[-1] = 1.0
        rows.append(v / np.linalg.norm(v))
    return np.stack(rows)


def make_hit(rank, score, chunk_id, doc_id, source="", title="", text=""):
    """A search hit over a made-up chunk row, for tests of what consumes hits."""
    from ingest.store import ChunkRow
    from retrieval.contract import Hit

    return Hit(rank, score, ChunkRow(chunk_id, doc_id, source, title, 0, text, 0, len(text), 0))


def dense_search(store, method, embedder, query, k=5):
    """One query through a dense method's searcher, with a given embedder."""
    from retrieval.contract import search_one
    from retrieval.methods import open_searcher

    return search_one(open_searcher(store, method, {method: embedder}), query, k)
CORPUS = REPO / "corpus" / "docs"
QUERIES = REPO / "corpus" / "queries.jsonl"


@pytest.fixture(scope="session", autouse=True)
def _hermetic_cache(tmp_path_factory):
    """Derived model files (the SmolLM2 safetensors copy) go to a session folder."""
    cache = tmp_path_factory.mktemp("ragmini-cache")
    old = os.environ.get("RAGMINI_CACHE")
    os.environ["RAGMINI_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("RAGMINI_CACHE", None)
    else:
        os.environ["RAGMINI_CACHE"] = old


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch, tmp_path):
    """Tests never touch a real .ragmini/ or a user's RAGMINI_STORE."""
    monkeypatch.delenv("RAGMINI_STORE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def tokenizer():
    from ingest.chunk import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="session")
def glove():
    from retrieval.glove import GloveEmbedder

    return GloveEmbedder.packaged()


@pytest.fixture(scope="session")
def sbert():
    from retrieval.sbert import SbertEmbedder

    return SbertEmbedder.packaged()


@pytest.fixture(scope="session")
def corpus_store_path(tmp_path_factory, glove, sbert):
    """The bundled corpus ingested with both methods, once per session (read-only)."""
    from ingest.pipeline import ingest_paths
    from ingest.store import Store
    from retrieval.indexing import update_index

    path = tmp_path_factory.mktemp("corpus-store") / "store"
    with Store.open(path, create=True) as store:
        ingest_paths(store, [CORPUS], progress=False)
        update_index(store, "glove", glove, progress=False)
        update_index(store, "sbert", sbert, progress=False)
    return path


@pytest.fixture(scope="module")
def served_store(corpus_store_path, tmp_path_factory):
    """The bundled corpus with every method indexed, in a folder of the test module's
    own (the server tests upload and delete in it)."""
    from ragmini.cli import main

    path = tmp_path_factory.mktemp("served") / "store"
    shutil.copytree(corpus_store_path, path)
    try:
        main(["ingest", str(CORPUS), "--store", str(path), "--methods", "bm25,glove-sif,tfidf",
              "--no-progress"])
    except SystemExit as exc:
        assert not exc.code
    return path


@pytest.fixture
def corpus_store(corpus_store_path):
    from ingest.store import Store

    with Store.open(corpus_store_path) as store:
        yield store


@pytest.fixture
def store_copy(corpus_store_path, tmp_path):
    """A private, writable copy of the bundled-corpus store."""
    target = tmp_path / "store-copy"
    shutil.copytree(corpus_store_path, target)
    return target


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """A real GPT-2 architecture with random weights and a byte-level BPE tokenizer
    trained here on the bundled corpus: no GPT-2 weights or vocab exist offline."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    import torch

    texts = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.iterdir())]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=600, min_frequency=2,
                            special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(config)
    out = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def smollm2():
    from generation.models import load_generator

    return load_generator("smollm2")


@pytest.fixture(scope="session")
def smollm2_torch():
    from generation.models import load_generator

    return load_generator("smollm2-torch")


LLAMA_SERVER_KEY = "ragmini-test-key"


@pytest.fixture(scope="session")
def llama_server():
    """llama.cpp's OpenAI-compatible server on the packaged SmolLM2 GGUF, on a free
    loopback port, requiring the API key LLAMA_SERVER_KEY; stopped when the
    session ends (and, should the run be killed, when this process dies)."""
    from core.models import smollm2_gguf
    from generation.llama_server import llama_server as serve

    with serve(smollm2_gguf(), alias="smollm2", api_key=LLAMA_SERVER_KEY) as server:
        yield server
