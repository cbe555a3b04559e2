"""Prompts, sampling and citations, on a tiny GPT-2 and the packaged SmolLM2."""

from __future__ import annotations

import pytest

from generation.answer import Sampling, answer, generate, parse_citations
from generation.models import load_generator
from generation.prompt import Source, build_prompt
from core.errors import ModelUnavailable, QueryError, RagminiError
from tests.conftest import dense_search, make_hit


def _hits(n, words=60):
    return [make_hit(i, 1.0 - i / 10, 100 + i, f"doc{i}", f"/d/{i}", f"Title {i}",
                " ".join(f"source{i} word{j}" for j in range(words))) for i in range(1, n + 1)]


def _sources(hits):
    return [Source(h.rank, h.chunk) for h in hits]


@pytest.mark.parametrize("text,n,valid,invalid", [
    ("BM25 saturates [1]. Length matters [2][1].", 3, [1, 2], []),
    ("See [1, 3] and [2; 3].", 3, [1, 3, 2], []),
    ("Made up [4] and [0].", 3, [], [4, 0]),
    ("No citations here, just [brackets].", 3, [], []),
    ("", 0, [], []),
])
def test_parse_citations(text, n, valid, invalid):
    assert parse_citations(text, n) == (valid, invalid)


def test_tiny_gpt2_loads_as_plain_prompt_model(tiny_gpt2_dir):
    gen = load_generator(str(tiny_gpt2_dir), fallback=False)
    assert gen.chat is False and gen.context_window == 256 and gen.fallback_from is None


def test_prompt_drops_lowest_ranked_sources_first(tiny_gpt2_dir):
    gen = load_generator(str(tiny_gpt2_dir), fallback=False)
    sources = _sources(_hits(5))
    full = build_prompt("what?", sources, gen.tokenizer, chat=False, budget=100_000)
    assert full.dropped == 0 and [s.n for s in full.sources] == [1, 2, 3, 4, 5]
    budget = len(full.input_ids) // 2
    fitted = build_prompt("what?", sources, gen.tokenizer, chat=False, budget=budget)
    assert len(fitted.input_ids) <= budget
    kept = [s.n for s in fitted.sources]
    assert kept == list(range(1, len(kept) + 1)) and fitted.dropped == 5 - len(kept)
    assert not fitted.truncated


def test_prompt_truncates_the_best_source_when_alone_too_long(tiny_gpt2_dir):
    gen = load_generator(str(tiny_gpt2_dir), fallback=False)
    sources = _sources(_hits(3, words=400))
    fitted = build_prompt("what?", sources, gen.tokenizer, chat=False, budget=120)
    assert len(fitted.input_ids) <= 120
    assert fitted.truncated and [s.n for s in fitted.sources] == [1] and fitted.dropped == 2
    assert sources[0].text.startswith(fitted.sources[0].text[:20])
    with pytest.raises(QueryError, match="too long"):
        build_prompt("why " * 500, sources, gen.tokenizer, chat=False, budget=120)


def test_sampling_is_reproducible_by_seed(tiny_gpt2_dir):
    gen = load_generator(str(tiny_gpt2_dir), fallback=False)
    ids = gen.tokenizer("Retrieval and generation")["input_ids"]
    s = Sampling(temperature=1.0, top_p=0.95, top_k=50, max_new_tokens=20, seed=7)
    first, again = generate(gen, ids, s), generate(gen, ids, s)
    other = generate(gen, ids, Sampling(temperature=1.0, max_new_tokens=20, seed=8))
    assert first == again and first != other
    greedy = Sampling(max_new_tokens=20)
    assert generate(gen, ids, greedy) == generate(gen, ids, greedy)


def test_answer_on_tiny_gpt2_fits_window_and_checks_citations(tiny_gpt2_dir):
    gen = load_generator(str(tiny_gpt2_dir), fallback=False)
    result = answer("what is source one?", _hits(5), gen, Sampling(max_new_tokens=40))
    assert result.prompt_tokens <= gen.context_window - 40
    assert result.dropped_sources > 0 and "left out" in result.notes[0]
    assert set(result.citations) <= {s.n for s in result.sources}
    assert result.generator == str(tiny_gpt2_dir)


@pytest.mark.parametrize("kwargs", [
    {"temperature": -0.1}, {"top_p": 0}, {"top_k": -1}, {"max_new_tokens": 0},
    {"no_repeat_ngram": -1},
])
def test_sampling_validation_names_the_parameter(kwargs):
    # The library names its parameter (the HTTP API's field); the CLI maps it to a flag.
    (param,) = kwargs
    with pytest.raises(RagminiError, match=f"^{param} must") as exc:
        Sampling(**kwargs)
    assert exc.value.param == param


def test_missing_generator_fails_fast_without_fallback(tmp_path):
    with pytest.raises(ModelUnavailable, match="not in the local Hugging Face cache"):
        load_generator("distilgpt2", fallback=False)
    with pytest.raises(ModelUnavailable, match="holds no loadable model"):
        load_generator(str(tmp_path), fallback=False)


@pytest.mark.slow
def test_smollm2_answers_from_sources(smollm2, corpus_store, sbert):
    assert smollm2.name.startswith("smollm2 (") and "llama.cpp" in smollm2.name
    assert smollm2.context_window == 8192
    hits = dense_search(corpus_store, "sbert", sbert, "What is product quantization?", k=3)
    result = answer("What is product quantization?", hits, smollm2, Sampling(max_new_tokens=48))
    assert result.answer.strip()
    assert [s.doc_id for s in result.sources][0] == "product-quantization.md"
    assert set(result.citations) <= {1, 2, 3}
    assert 200 < result.prompt_tokens < 8192 - 48
    # Greedy decoding is deterministic.
    again = answer("What is product quantization?", hits, smollm2, Sampling(max_new_tokens=48))
    assert again.answer == result.answer


@pytest.mark.slow
def test_smollm2_torch_is_cached_and_rebuilt_when_the_gguf_changes(corpus_store, sbert,
                                                                   _hermetic_cache):
    from core.models import smollm2_gguf

    gen = load_generator("smollm2-torch")
    assert gen.chat and gen.context_window == 8192 and gen.name.startswith("smollm2-torch")
    hits = dense_search(corpus_store, "sbert", sbert, "What is product quantization?", k=3)
    result = answer("What is product quantization?", hits, gen, Sampling(max_new_tokens=16))
    assert result.answer.strip()
    # The first load left a safetensors copy that names the GGUF it came from.
    cached = _hermetic_cache / "smollm2-135m-instruct-q4_1"
    marker = cached / "ragmini-complete"
    assert marker.read_text().startswith(smollm2_gguf().name)
    assert (cached / "model.safetensors").is_file()
    assert load_generator("smollm2-torch").name == gen.name
    # A copy of another GGUF (size or time differs) is not trusted: rebuilt.
    marker.write_text("SmolLM2-135M-Instruct.Q4_1.gguf 1 1\n")
    load_generator("smollm2-torch")
    assert marker.read_text().strip() != "SmolLM2-135M-Instruct.Q4_1.gguf 1 1"


@pytest.mark.slow
def test_default_generator_falls_back_to_packaged(smollm2):
    gen = load_generator("distilgpt2")
    assert gen.fallback_from == "distilgpt2" and gen.name.startswith("smollm2")
