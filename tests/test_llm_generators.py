"""Generators beyond extractive: the packaged SmolLM2 on llama.cpp in-process, and
any OpenAI-compatible server through `openai:MODEL`, against a real
`python -m llama_cpp.server` on the packaged GGUF (no mocks: the failures are a
closed port, a real HTTP server that is not an API, a socket that never answers,
a wrong key, a server killed mid-answer)."""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading

import numpy as np
import pytest

from core.errors import ModelUnavailable, RagminiError
from generation.answer import ABSTAIN_TEXT, Sampling, answer
from generation.ask import ask
from generation.models import (
    DEFAULT_GENERATOR,
    available_generators,
    default_generator,
    load_generator,
)
from tests.conftest import LLAMA_SERVER_KEY, dense_search
from tests.test_cli import run_cli

QUESTION = "What is product quantization?"
UNANSWERABLE = "Who won the 2022 football World Cup?"


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "RAGMINI_GENERATOR",
                 "RAGMINI_CONTEXT_WINDOW"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def served(llama_server):
    """openai:smollm2 on the session's llama_cpp.server, loaded once."""
    from generation.openai_compat import load_openai

    return load_openai("openai:smollm2", base_url=llama_server.base_url,
                       api_key=LLAMA_SERVER_KEY)


# -- names and the default ------------------------------------------------------------

def test_default_is_extractive_unless_configured(monkeypatch):
    assert DEFAULT_GENERATOR == "extractive" == default_generator()
    assert available_generators() == ("extractive", "smollm2", "distilgpt2")
    monkeypatch.setenv("RAGMINI_GENERATOR", "openai:llama3.2")
    assert default_generator() == "openai:llama3.2"
    assert available_generators() == ("openai:llama3.2", "extractive", "smollm2",
                                      "distilgpt2")


def test_the_cli_and_api_read_the_one_default(monkeypatch):
    import inspect

    import ragmini
    from ragmini.cli import cli

    import click

    # None on both: each asks generation.models.default_generator() at call time.
    assert inspect.signature(ragmini.Store.ask).parameters["generator"].default is None
    option = next(p for p in cli.commands["ask"].params if p.name == "generator")
    assert option.get_default(click.Context(cli.commands["ask"])) is None


# -- llama.cpp in-process ---------------------------------------------------------------

def test_no_repeat_ngram_bans_only_the_answers_own_repeats():
    from generation.llamacpp import _NoRepeatNgram

    prompt = [5, 6, 7, 5, 6]  # the prompt's n-grams are not banned: quoting is allowed
    ban = _NoRepeatNgram(3, start=len(prompt))
    scores = np.zeros(10, dtype=np.float32)
    # Answer so far 1 2 3 1 2: the trigram "1 2 3" exists, so 3 may not follow "1 2".
    out = ban(np.array(prompt + [1, 2, 3, 1, 2]), scores.copy())
    assert np.isneginf(out[3]) and np.isfinite(np.delete(out, 3)).all()
    # "5 6" ends the prompt and precedes 7 there, but 7 stays allowed.
    assert np.isfinite(ban(np.array(prompt + [5, 6]), scores.copy())).all()
    # Too short to repeat anything.
    assert np.isfinite(ban(np.array(prompt + [1]), scores.copy())).all()
    assert np.isneginf(_NoRepeatNgram(1, start=0)(np.array([4, 2]), scores.copy())[[2, 4]]).all()
    # Citation markers repeat freely: with 7 8 9 as "[", "1", "]", a second [1] is fine,
    # but words after a marker still may not loop.
    cite = _NoRepeatNgram(3, start=0, exempt=frozenset({7, 8, 9}))
    assert np.isfinite(cite(np.array([7, 8, 9, 1, 7, 8]), scores.copy())).all()
    assert np.isneginf(cite(np.array([9, 1, 2, 9, 1]), scores.copy())[2])


@pytest.mark.slow
def test_citation_tokens_are_the_markers(smollm2):
    texts = {smollm2.tokenizer.decode([t]) for t in smollm2.citation_tokens}
    assert {"[", "]", "1", "2"} <= {t.strip() for t in texts}
    assert all(re.fullmatch(r"[\s\[\]\d,;]+", t) for t in texts)
    assert not {"the", " the", "a", "."} & texts
    ids = smollm2.tokenizer("See [1] and [2, 3].")["input_ids"]
    assert sum(t in smollm2.citation_tokens for t in ids) >= 6


@pytest.mark.slow
def test_llamacpp_threads_and_the_models_template(smollm2, corpus_store, sbert, monkeypatch):
    from core.models import smollm2_gguf
    from generation.llamacpp import cores, default_threads
    from generation.prompt import Source, build_prompt
    from transformers import AutoTokenizer

    assert smollm2.threads == max(1, cores() - 1) == default_threads()
    monkeypatch.setenv("RAGMINI_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("RAGMINI_THREADS", "0")
    with pytest.raises(RagminiError, match="RAGMINI_THREADS"):
        default_threads()
    monkeypatch.delenv("RAGMINI_THREADS")
    gguf = smollm2_gguf()
    hf = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    hits = dense_search(corpus_store, "sbert", sbert, QUESTION, k=3)
    sources = [Source(i, h.chunk) for i, h in enumerate(hits, 1)]
    ours = smollm2.prompt(QUESTION, sources, budget=2048)
    theirs = build_prompt(QUESTION, sources, hf, chat=True, budget=2048)
    # The GGUF's own chat template (SmolLM2's default system prompt included) and
    # tokenizer give the prompt transformers gives.
    assert smollm2.tokenizer.apply_chat_template(ours.messages) == hf.apply_chat_template(
        theirs.messages, add_generation_prompt=True, tokenize=False)
    assert "You are a helpful AI assistant named SmolLM" in smollm2.tokenizer.decode(
        ours.input_ids)
    assert ours.input_ids == theirs.input_ids
    # Too small a budget drops the lowest-ranked sources first, as for transformers.
    small = smollm2.prompt(QUESTION, sources, budget=ours.n_tokens - 5)
    assert small.dropped >= 1 and small.n_tokens <= ours.n_tokens - 5


@pytest.mark.slow
def test_llamacpp_sampling_streaming_and_turns(smollm2, corpus_store, sbert):
    hits = dense_search(corpus_store, "sbert", sbert, QUESTION, k=3)
    pieces: list[str] = []
    greedy = answer(QUESTION, hits, smollm2, Sampling(max_new_tokens=40), on_text=pieces.append)
    assert len(pieces) > 3 and "".join(pieces).strip() == greedy.answer
    sampled = Sampling(temperature=0.9, seed=7, max_new_tokens=24)
    first = answer(QUESTION, hits, smollm2, sampled).answer
    assert answer(QUESTION, hits, smollm2, sampled).answer == first
    # Two asks at once take turns on the one llama.cpp context: same answers.
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(
        answer(QUESTION, hits, smollm2, Sampling(max_new_tokens=40)).answer)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [greedy.answer, greedy.answer]
    reply = smollm2.complete([{"role": "user", "content": "Say hello."}],
                             Sampling(max_new_tokens=12))
    assert reply.strip()


# -- an OpenAI-compatible server: the real llama_cpp.server --------------------------------

@pytest.mark.slow
def test_openai_ask_plain_and_streamed(served, corpus_store, sbert):
    assert served.name == "openai:smollm2" and served.model == "smollm2"
    pieces: list[str] = []
    done = ask(corpus_store, QUESTION, served, strict=False, sampling=Sampling(max_new_tokens=64),
               embedders={"sbert": sbert}, on_text=pieces.append)
    a = done.answer
    assert not a.abstained and a.generator == "openai:smollm2"
    assert a.sources[0].doc_id == "product-quantization.md"
    assert len(pieces) > 3 and "".join(pieces).strip() == a.answer
    # Support marks as for any generator: every sentence judged against its sources.
    assert a.sentences and {s.support.label for s in a.sentences} <= {
        "supported", "weak", "unsupported"}
    assert 200 < a.prompt_tokens <= served.context_window - 64


@pytest.mark.slow
def test_openai_ask_strict_and_abstaining(served, store_copy, sbert):
    from ingest.store import Store
    from retrieval.indexing import update_index

    with Store.open(store_copy) as corpus_store:
        # Abstention reads the MiniLM and the BM25 rankings (generation/abstain.py).
        update_index(corpus_store, "bm25", progress=False)
        _strict_and_abstaining(served, corpus_store, sbert)


def _strict_and_abstaining(served, corpus_store, sbert):
    done = ask(corpus_store, QUESTION, served, strict=True, sampling=Sampling(max_new_tokens=64),
               embedders={"sbert": sbert})
    a = done.answer
    assert a.strict and a.generator.startswith("openai:smollm2")
    assert a.answer and all(s.support.label != "unsupported" for s in a.sentences)
    if "extractive fallback" in a.generator:
        assert any("extractive answer instead" in n for n in a.notes)
    off = ask(corpus_store, UNANSWERABLE, served, embedders={"sbert": sbert}).answer
    assert off.abstained and off.answer == ABSTAIN_TEXT and off.generator == "openai:smollm2"


@pytest.mark.slow
def test_openai_through_the_cli_and_complete(llama_server, served, corpus_store_path, capsys,
                                             monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", LLAMA_SERVER_KEY)
    code, out, err = run_cli(capsys, "ask", QUESTION, "--store", str(corpus_store_path),
                             "--generator", "openai:smollm2", "--base-url",
                             llama_server.base_url, "--max-new-tokens", "32", "--json")
    assert code == 0, err
    assert json.loads(out)["generator"].startswith("openai:smollm2")
    # The Python API passes base_url through the same way.
    import ragmini

    with ragmini.open(corpus_store_path) as store:
        got = store.ask(QUESTION, generator="openai:smollm2", base_url=llama_server.base_url,
                        max_new_tokens=16, strict=False)
    assert got.generator == "openai:smollm2"
    assert served.complete([{"role": "user", "content": "Say hello."}],
                           Sampling(max_new_tokens=12))
    # `openai:` alone takes the first model the server lists.
    from generation.openai_compat import load_openai

    assert load_openai("openai:", base_url=llama_server.base_url,
                       api_key=LLAMA_SERVER_KEY).model == "smollm2"


@pytest.mark.slow
def test_wrong_or_missing_key_is_a_401_that_says_so(llama_server, monkeypatch):
    with pytest.raises(ModelUnavailable, match=r"refused the request \(401\): it wants an API "
                                               r"key: set OPENAI_API_KEY") as missing:
        load_generator("openai:smollm2", base_url=llama_server.base_url)
    assert llama_server.base_url in str(missing.value) and "\n" not in str(missing.value)
    monkeypatch.setenv("OPENAI_API_KEY", "not-the-key")
    with pytest.raises(ModelUnavailable, match="the key in OPENAI_API_KEY is wrong"):
        load_generator("openai:smollm2", base_url=llama_server.base_url)


@pytest.mark.slow
def test_unknown_model_names_what_the_server_has(llama_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", LLAMA_SERVER_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.base_url)
    with pytest.raises(ModelUnavailable, match="has no model 'llama3.2'; it lists: smollm2"):
        load_generator("openai:llama3.2")


@pytest.mark.slow
def test_server_dying_mid_stream_is_one_line(corpus_store, sbert):
    from core.models import smollm2_gguf
    from generation.llama_server import llama_server

    with llama_server(smollm2_gguf()) as server:  # no key: a server without auth
        gen = load_generator("openai:smollm2", base_url=server.base_url)
        pieces: list[str] = []

        def kill_on_first(text: str) -> None:
            pieces.append(text)
            server.kill()

        with pytest.raises(ModelUnavailable, match="stopped in the middle of the answer") as err:
            ask(corpus_store, QUESTION, gen, strict=False, embedders={"sbert": sbert},
                sampling=Sampling(max_new_tokens=256), on_text=kill_on_first)
        assert pieces and server.base_url in str(err.value) and "\n" not in str(err.value)
        assert server.process.poll() is not None
        # The next ask finds no server: a clear error, not a hang.
        with pytest.raises(ModelUnavailable, match="cannot reach"):
            ask(corpus_store, QUESTION, gen, strict=False, embedders={"sbert": sbert})


# -- servers that are not there, not an API, or silent ------------------------------------

def _closed_port() -> int:
    from generation.llama_server import free_port

    return free_port()


def test_unreachable_server_is_one_line_naming_the_url():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(ModelUnavailable) as err:
        load_generator("openai:anything", base_url=url)
    message = str(err.value)
    assert message.startswith(f"cannot reach an OpenAI-compatible server at {url} "
                              "(connection refused); check that it is running")
    assert "\n" not in message and err.value.param == "generator"


def test_unreachable_server_through_the_cli(capsys, corpus_store_path):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    code, out, err = run_cli(capsys, "ask", QUESTION, "--store", str(corpus_store_path),
                             "--generator", "openai:m", "--base-url", url)
    assert code == 1 and not out
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert url in err and "connection refused" in err


def test_a_base_url_is_required_and_checked(monkeypatch):
    with pytest.raises(ModelUnavailable, match="needs its server's URL: pass --base-url"):
        load_generator("openai:m")
    with pytest.raises(RagminiError, match="is not an http"):
        load_generator("openai:m", base_url="ftp://127.0.0.1/v1")
    monkeypatch.setenv("RAGMINI_CONTEXT_WINDOW", "lots")
    with pytest.raises(RagminiError, match="RAGMINI_CONTEXT_WINDOW"):
        from generation.openai_compat import _context_from_env

        _context_from_env()


class _NotAnAPI(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path == "/v1/models":
            body = b"<html><body>a web page</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAnAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_server_that_is_not_an_api(web_server):
    with pytest.raises(ModelUnavailable, match=r"no OpenAI-compatible API at .*404 Not Found\): "
                                               r"check the base URL; it usually ends in /v1"):
        load_generator("openai:m", base_url=f"{web_server}/wrong")
    with pytest.raises(ModelUnavailable, match="did not answer as an OpenAI-compatible API"):
        load_generator("openai:m", base_url=f"{web_server}/v1")


def test_a_silent_server_times_out(monkeypatch):
    from generation import openai_compat

    monkeypatch.setattr(openai_compat, "CHECK_TIMEOUT", 0.5)
    with socket.socket() as listener:  # accepts connections (the backlog) and says nothing
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        with pytest.raises(ModelUnavailable, match="did not answer in time"):
            load_generator("openai:m", base_url=url)
