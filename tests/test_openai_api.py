"""The OpenAI-compatible endpoint (`/v1/models`, `/v1/chat/completions`) driven by the
official `openai` client against a live `ragmini serve`: a plain and a streamed
completion, a two-turn conversation, errors in OpenAI's shape and a wrong token."""

from __future__ import annotations

import httpx
import openai
import pytest

from ragmini.server.process import running_server

pytestmark = pytest.mark.slow  # a server process that loads MiniLM


@pytest.fixture(scope="module")
def base(served_store):
    with running_server(served_store) as url:
        yield url


@pytest.fixture(scope="module")
def client(base):
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_list_the_generators(client):
    ids = [m.id for m in client.models.list().data]
    assert "ragmini-extractive" in ids and ids[0].startswith("ragmini-")
    assert len(ids) == len(set(ids))


def test_a_plain_completion_is_the_checked_answer(client, base):
    reply = client.chat.completions.create(
        model="ragmini-extractive",
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "What is product quantization?"}])
    content = reply.choices[0].message.content
    extra = reply.model_extra["ragmini"]
    body = httpx.post(f"{base}/api/ask", json={"question": "What is product quantization?",
                                               "generator": "extractive"}, timeout=120).json()
    assert extra["answer"] == body["answer"]  # the same checked answer as /api/ask
    assert content.startswith(body["answer"].strip()) and "\nSources:\n[1] " in content
    assert "[1]" in extra["answer"] or extra["citations"]
    assert all(s["support"]["label"] for s in extra["sentences"])
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_a_streamed_completion_sends_the_same_text(client):
    question = [{"role": "user", "content": "What is product quantization?"}]
    whole = client.chat.completions.create(model="ragmini-extractive", messages=question)
    stream = client.chat.completions.create(model="ragmini-extractive", messages=question,
                                            stream=True, stream_options={"include_usage": True})
    pieces, finish, usage, extra = [], None, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
            extra = (chunk.model_extra or {}).get("ragmini") or extra
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "stop" and usage.completion_tokens == whole.usage.completion_tokens
    assert extra["sources"]


def test_an_unanswerable_question_abstains(client):
    reply = client.chat.completions.create(
        model="ragmini-extractive",
        messages=[{"role": "user", "content": "Who won the 2022 football World Cup?"}])
    assert reply.model_extra["ragmini"]["abstained"] is True
    assert reply.choices[0].message.content.startswith("The documents do not answer this.")
    assert "Closest sources:" in reply.choices[0].message.content


def test_errors_come_in_openai_shape(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o",
                                       messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="ragmini-extractive",
                                       messages=[{"role": "system", "content": "no question"}])
    assert "last user message" in empty.value.body["message"]
    with pytest.raises(openai.BadRequestError) as bad_method:
        client.chat.completions.create(model="ragmini-extractive",
                                       messages=[{"role": "user", "content": "bm25?"}],
                                       extra_body={"ragmini": {"method": "nope"}})
    assert "unknown method 'nope'" in bad_method.value.body["message"]


def test_a_wrong_token_is_an_authentication_error(served_store):
    with running_server(served_store, "--token", "s3cret") as url:
        wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="not-it", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as refused:
            wrong.models.list()
        assert refused.value.status_code == 401
        assert refused.value.body["type"] == "authentication_error"
        assert "access token" in refused.value.body["message"]
        right = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert "ragmini-extractive" in [m.id for m in right.models.list().data]


def test_a_two_turn_conversation_searches_the_follow_up_made_standalone(client):
    first = [{"role": "user", "content": "What is BM25?"}]
    reply = client.chat.completions.create(model="ragmini-extractive", messages=first)
    follow_up = [*first, {"role": "assistant", "content": reply.choices[0].message.content},
                 {"role": "user", "content": "How does it normalise for document length?"}]
    second = client.chat.completions.create(model="ragmini-extractive", messages=follow_up)
    extra = second.model_extra["ragmini"]
    assert extra["question"] == "How does it normalise for document length?"
    assert "BM25" in extra["searched_for"] and extra["rewrite"] != "as asked"
    assert any(s["doc_id"] == "bm25.md" for s in extra["sources"])
