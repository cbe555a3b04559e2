"""`ragmini chat` driven through its standard input, as a person would type."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ragmini.cli import cli


def _chat(store, lines: list[str], *extra: str):
    result = CliRunner().invoke(cli, ["chat", "--store", str(store), "--generator", "extractive",
                                      *extra], input="".join(f"{line}\n" for line in lines))
    return result


@pytest.mark.slow
def test_a_conversation_with_follow_ups_sources_and_a_new_start(store_copy):
    result = _chat(store_copy, [
        "What is BM25?",
        "How does it normalise for document length?",
        "/sources",
        "/new",
        "How does it normalise for document length?",
        "/bogus",
        "/quit",
        "never read",
    ], "--no-abstain")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("ragmini chat over")
    turns = out.split("> ")
    # The first question is searched as asked; the follow-up carries "BM25".
    assert "searched for:" not in turns[1]
    assert "searched for: How does it normalise for document length? BM25" in turns[2]
    assert "sentences supported by [" in turns[2] or "sentence supported by [" in turns[2]
    # /sources lists the last answer's numbered sources, the cited ones marked.
    assert "[1] bm25.md" in turns[3] and "(cited)" in turns[3]
    # After /new the same words are a first question again: nothing carried.
    assert "(new conversation)" in turns[4]
    assert "searched for:" not in turns[5]
    assert "unknown command /bogus" in turns[6]
    assert "never read" not in out and out.rstrip().endswith("bye")


@pytest.mark.slow
def test_sources_before_any_answer_and_errors_do_not_end_the_chat(store_copy):
    result = _chat(store_copy, ["/sources", "/help", "What is BM25?"], "-k", "2",
                   "--no-abstain")
    assert result.exit_code == 0, result.output
    assert "no answer yet" in result.output and "/new (forget the conversation)" in result.output
    assert "bye" in result.output  # end of input ends it


def test_chat_without_a_store_is_one_line(tmp_path):
    result = _chat(tmp_path / "nothing", ["hello"])
    assert result.exit_code != 0
    assert "no ragmini store" in str(result.exception) or "no ragmini store" in result.output
