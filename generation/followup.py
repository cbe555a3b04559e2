"""Follow-up questions made standalone before retrieval.

"How do I list what is inside it?" finds nothing about tar on its own. Before
retrieving, ragmini turns a follow-up into the query it searches, from the
conversation so far (`history`: the earlier turns, oldest first, each
``{"question": ..., "answer": ...}``):

- without a language model, by a rule: the follow-up plus the key terms of the
  previous question that it does not already name (``carry``). Measured on the
  follow-up dev set (bench/followups.py, docs/conversations.md) against
  searching the follow-up alone, prepending the whole previous question, and
  searching both and fusing: carrying only the terms keeps the follow-up's own
  words in charge, so the previous turn's document does not keep outranking the
  new one, while the topic ("tar", "zsh") comes along;
- with a language model that can rewrite (any ``complete(messages) -> str``, e.g.
  an OpenAI-compatible chat model), by asking it with `rewrite_messages`; an
  empty, overlong or failed reply falls back to the rule, and says so.

The result names the query actually searched, which every front end shows as
"searched for: ...".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import QueryError, RagminiError

Complete = Callable[[list[dict]], str]  # chat messages -> the model's reply

MAX_TURNS = 50  # a longer history is refused: only the last turns are ever read
MAX_TEXT = 20_000  # characters of one question or answer
CARRY_TURNS = 1  # earlier questions whose terms are carried (1: the previous one)
MAX_REWRITE_WORDS = 40  # a longer LLM reply is not a question: the rule is used instead

_WORD = re.compile(r"[A-Za-z0-9][\w.+#/@-]*[\w+#]|[A-Za-z0-9]")
# Words that ask rather than name: never carried.
_STOPWORDS = frozenset("""a about above after again against all also am an and any are as at be
because been before being below between both but by can could did do does doing done down during
each either few for from further get gets getting got had has have having he her here hers him
his how however i if in into is it its itself just let like make makes many may me might more most
much must my myself need no nor not now of off on once one only or other our ours out over own
please same she should so some such than that the their theirs them then there these they thing
things this those through thus to too under until up upon use used using very want was way we were
what when where whether which while who whom why will with without would you your yours yourself
instead then else also still again really actually first later""".split())


@dataclass(frozen=True)
class Standalone:
    """The query searched for a question, and how it was made."""

    question: str  # as asked
    query: str  # what retrieval searched
    how: str  # "as asked" | "carried terms" | "rewritten by the language model" | a fallback note


def check_history(history) -> list[dict[str, str]]:
    """The history as a list of {"question", "answer"} (answer may be ""), oldest
    first; a RagminiError naming `history` for anything else."""
    if history is None:
        return []
    if isinstance(history, (str, bytes, dict)) or not isinstance(history, Sequence):
        raise QueryError('history must be a list of {"question": ..., "answer": ...} turns',
                           param="history")
    if len(history) > MAX_TURNS:
        raise QueryError(f"history has {len(history)} turns; at most {MAX_TURNS} are "
                           "accepted (start a new conversation)", param="history")
    out = []
    for i, turn in enumerate(history):
        if not isinstance(turn, dict):
            raise QueryError(f'history[{i}] must be {{"question": ..., "answer": ...}}',
                               param="history")
        question, answer = turn.get("question"), turn.get("answer", "")
        if not isinstance(question, str) or not question.strip():
            raise QueryError(f'history[{i}] needs a non-empty "question"', param="history")
        if answer is None:
            answer = ""
        if not isinstance(answer, str):
            raise QueryError(f'history[{i}]["answer"] must be text', param="history")
        if len(question) > MAX_TEXT or len(answer) > MAX_TEXT:
            raise QueryError(f"history[{i}] is longer than {MAX_TEXT} characters",
                               param="history")
        out.append({"question": question, "answer": answer})
    return out


def key_terms(text: str) -> list[str]:
    """The words of `text` that name something (not question words), in order, once."""
    seen: dict[str, str] = {}
    for word in _WORD.findall(text):
        low = word.lower()
        if low in _STOPWORDS or low in seen or (len(low) < 2 and not low.isdigit()):
            continue
        seen[low] = word
    return list(seen.values())


def carry(question: str, history: Sequence[dict]) -> str:
    """The rule: `question` followed by the key terms of the previous question(s)
    that it does not name already (compared on their first 5 letters).

    Example:
        >>> carry("How do I list what is inside it?",
        ...       [{"question": "How do I create a tar archive of a directory?", "answer": ""}])
        'How do I list what is inside it? create tar archive directory'
    """
    if not history:
        return question
    have = {w.lower()[:5] for w in key_terms(question)}
    extra: list[str] = []
    for turn in history[-CARRY_TURNS:]:
        for term in key_terms(turn["question"]):
            stem = term.lower()[:5]
            if stem not in have:
                have.add(stem)
                extra.append(term)
    return f"{question} {' '.join(extra)}" if extra else question


def rewrite_messages(question: str, history: Sequence[dict], max_answer_chars: int = 600
                     ) -> list[dict]:
    """The chat messages that ask a language model for the standalone question."""
    lines = []
    for turn in history[-3:]:
        lines.append(f"User: {turn['question'].strip()}")
        answer = " ".join(turn.get("answer", "").split())
        if answer:
            if len(answer) > max_answer_chars:
                answer = answer[:max_answer_chars].rsplit(" ", 1)[0] + " ..."
            lines.append(f"Assistant: {answer}")
    conversation = "\n".join(lines)
    return [
        {"role": "system", "content": (
            "You rewrite a follow-up question so that it can be understood without the "
            "conversation before it. Replace pronouns and vague references (it, that, "
            "the second one) with what they refer to, and add the topic if the follow-up "
            "leaves it out. Do not answer the question and do not add anything else. "
            "Reply with the rewritten question only.")},
        {"role": "user", "content": (
            f"Conversation:\n{conversation}\n\nFollow-up question: {question.strip()}\n\n"
            "Standalone question:")},
    ]


def llm_rewrite(question: str, history: Sequence[dict], complete: Complete) -> str:
    """The language model's standalone question (first line, quotes and labels
    stripped); raises RagminiError when the reply cannot be one."""
    reply = complete(rewrite_messages(question, history))
    if not isinstance(reply, str):
        raise RagminiError("the language model's reply is not text")
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        raise RagminiError("the language model's reply was empty")
    text = re.sub(r"^(?:standalone question|rewritten question|question)\s*:\s*", "", lines[0],
                  flags=re.IGNORECASE)
    text = text.strip().strip("\"'\u201c\u201d").strip()
    if not text or len(text.split()) > MAX_REWRITE_WORDS:
        raise RagminiError("the language model's reply is not a question")
    return text


def standalone(question: str, history=None, complete: Complete | None = None) -> Standalone:
    """The query to search for `question` after `history` (see the module docstring)."""
    turns = check_history(history)
    if not turns:
        return Standalone(question, question, "as asked")
    if complete is not None:
        try:
            return Standalone(question, llm_rewrite(question, turns, complete),
                              "rewritten by the language model")
        except Exception as exc:  # any failure of the model: the rule stands in
            return Standalone(question, carry(question, turns),
                              f"carried terms (the language model's rewrite failed: {exc})")
    return Standalone(question, carry(question, turns), "carried terms")
