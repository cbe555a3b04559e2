"""Follow-up questions: the rule, the LLM rewrite through a stand-in `complete`, the
history check, and history through `ask`, `Store.ask` and `--json`."""

from __future__ import annotations

import json
import re

import pytest

from core.errors import QueryError
from generation.followup import (
    carry,
    check_history,
    key_terms,
    llm_rewrite,
    rewrite_messages,
    standalone,
)

TAR = [{"question": "How do I create a tar archive of a directory?", "answer": "Use tar -c."}]


def test_key_terms_keep_names_and_drop_question_words():
    assert key_terms("How do I create a tar archive of a directory?") == [
        "create", "tar", "archive", "directory"]
    assert key_terms("What does http.postBuffer really do in Git?") == [
        "http.postBuffer", "Git"]
    assert key_terms("And from csh?") == ["csh"]


def test_carry_adds_the_previous_questions_missing_terms():
    assert carry("How do I list what is inside it?", TAR) == \
        "How do I list what is inside it? create tar archive directory"
    # Terms the follow-up already names (by their first 5 letters) are not repeated.
    assert carry("How do I extract a tar archive?", TAR) == \
        "How do I extract a tar archive? create directory"
    assert carry("And from csh?", [{"question": "How does zsh differ from bash?",
                                    "answer": ""}]) == "And from csh? zsh differ bash"
    # Only the previous turn is read.
    older = [{"question": "What is grep?", "answer": ""}] + TAR
    assert "grep" not in carry("And how do I list it?", older)
    assert carry("What is tar?", []) == "What is tar?"


@pytest.mark.parametrize("history,message", [
    ("How do I create a tar archive?", "must be a list"),
    ({"question": "x"}, "must be a list"),
    ([{"answer": "no question"}], 'history[0] needs a non-empty "question"'),
    ([{"question": "  "}], 'history[0] needs a non-empty "question"'),
    ([{"question": "ok", "answer": 3}], 'history[0]["answer"] must be text'),
    (["just text"], "history[0] must be"),
    ([{"question": "q"}] * 51, "at most 50"),
])
def test_bad_history_is_a_query_error_naming_history(history, message):
    with pytest.raises(QueryError, match=re.escape(message)) as exc:
        check_history(history)
    assert exc.value.param == "history"


def test_history_is_normalised():
    assert check_history(None) == []
    assert check_history([{"question": "q"}, {"question": "r", "answer": None}]) == [
        {"question": "q", "answer": ""}, {"question": "r", "answer": ""}]


def test_standalone_without_history_searches_the_question():
    made = standalone("What is tar?", [])
    assert (made.query, made.how) == ("What is tar?", "as asked")


def test_llm_rewrite_through_a_stand_in_model():
    seen = []

    def complete(messages):
        seen.append(messages)
        return 'Standalone question: "How do I list the contents of a tar archive?"\nextra'

    made = standalone("How do I list what is inside it?", TAR, complete)
    assert made.query == "How do I list the contents of a tar archive?"
    assert made.how == "rewritten by the language model"
    system, user = seen[0]
    assert system["role"] == "system" and "Reply with the rewritten question only" in \
        system["content"]
    assert user["role"] == "user"
    assert "User: How do I create a tar archive of a directory?" in user["content"]
    assert "Assistant: Use tar -c." in user["content"]
    assert user["content"].endswith("Follow-up question: How do I list what is inside it?"
                                    "\n\nStandalone question:")


@pytest.mark.parametrize("reply,why", [
    ("", "was empty"),
    ("   \n  ", "was empty"),
    ("word " * 60, "is not a question"),
    (None, "is not text"),
])
def test_a_failed_rewrite_falls_back_to_the_rule_and_says_so(reply, why):
    made = standalone("How do I list what is inside it?", TAR, lambda messages: reply)
    assert made.query == carry("How do I list what is inside it?", TAR)
    assert made.how.startswith("carried terms (the language model's rewrite failed")
    assert why in made.how


def test_a_model_that_raises_falls_back_too():
    def broken(messages):
        raise ConnectionError("connection refused")

    made = standalone("And from csh?", [{"question": "How does zsh differ from bash?"}], broken)
    assert made.query == "And from csh? zsh differ bash" and "connection refused" in made.how


def test_rewrite_messages_keep_the_last_three_turns_and_cut_long_answers():
    history = [{"question": f"Question {i}?", "answer": "word " * 400} for i in range(5)]
    user = rewrite_messages("And then?", history)[1]["content"]
    assert "Question 0?" not in user and "Question 1?" not in user
    assert all(f"Question {i}?" in user for i in (2, 3, 4))
    assert user.count(" ...") == 3 and len(user) < 3 * 700 + 300
    assert llm_rewrite("x", history, lambda m: "Question: What is it?") == "What is it?"


@pytest.mark.slow
def test_ask_searches_the_standalone_query(corpus_store, sbert):
    from generation.ask import ask
    from generation.models import load_generator

    history = [{"question": "What is BM25?", "answer": "A ranking function."}]
    done = ask(corpus_store, "How does it normalise for document length?",
               load_generator("extractive"), embedders={"sbert": sbert}, abstain=False,
               history=history)
    assert done.searched_for == "How does it normalise for document length? BM25"
    body = done.to_dict()
    assert body["question"] == "How does it normalise for document length?"
    assert body["searched_for"] == done.searched_for and body["rewrite"] == "carried terms"
    assert "bm25.md" in {s["doc_id"] for s in body["sources"]}
    # An LLM given as the rewriter is asked instead of the rule.
    done = ask(corpus_store, "How does it normalise for document length?",
               load_generator("extractive"), embedders={"sbert": sbert}, abstain=False,
               history=history, rewriter=lambda m: "How does BM25 normalise for length?")
    assert done.searched_for == "How does BM25 normalise for length?"
    assert done.rewrite == "rewritten by the language model"
    # No history: the question itself, reported as searched.
    done = ask(corpus_store, "What is BM25?", load_generator("extractive"),
               embedders={"sbert": sbert}, abstain=False)
    assert done.to_dict()["searched_for"] == "What is BM25?"


@pytest.mark.slow
def test_store_ask_passes_history_through(corpus_store_path, capsys):
    import ragmini

    with ragmini.open(corpus_store_path) as store:
        first = store.ask("What is BM25?", generator="extractive", abstain=False)
        follow = store.ask("How does it normalise for document length?",
                           generator="extractive", abstain=False,
                           history=[{"question": first.question, "answer": first.text}])
        assert follow.searched_for.endswith("BM25")
        assert follow.to_dict()["searched_for"] == follow.searched_for
        assert first.to_dict()["searched_for"] == "What is BM25?"
        with pytest.raises(ragmini.QueryError, match="history"):
            store.ask("And then?", generator="extractive", history="What is BM25?")
    from tests.test_cli import run_cli

    code, out, err = run_cli(capsys, "ask", "What is BM25?", "--store", str(corpus_store_path),
                             "--generator", "extractive", "--no-abstain", "--json")
    assert code == 0, err
    assert json.loads(out)["searched_for"] == "What is BM25?"


@pytest.mark.slow
def test_http_ask_takes_the_same_history(served_store):
    from fastapi.testclient import TestClient

    from ragmini.server.app import Settings, create_app

    client = TestClient(create_app(Settings(store=served_store)), base_url="http://127.0.0.1")
    body = {"question": "How does it normalise for document length?", "generator": "extractive",
            "abstain": False,
            "history": [{"question": "What is BM25?", "answer": "A ranking function."}]}
    r = client.post("/api/ask", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["searched_for"] == "How does it normalise for document length? BM25"
    assert r.json()["rewrite"] == "carried terms"
    r = client.post("/api/ask", json={**body, "history": [{"answer": "no question"}]})
    assert r.status_code == 422
