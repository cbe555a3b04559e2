"""How much of a question a passage names: content words, crudely stemmed.

Read by the abstention model (a signal) and by the extractive answer (a floor on
relevance), so it sits below both.
"""

from __future__ import annotations

import re

PREFIX = 5  # letters of a content word compared for `coverage`

_WORD = re.compile(r"[^\W\d_][\w'-]*|\d+")
_STOPWORDS = frozenset("""a about an and are as at be by can could did do does for from had has
have how i if in into is it its me my of on or our should so than that the their them then
there these they this those to up use used using was we what when where which who whom why
will with would you your yourself""".split())


def content_words(text: str) -> set[str]:
    """Lower-cased words without stopwords, crudely stemmed (plural s, -ing, -ed)."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if w in _STOPWORDS or len(w) < 2:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if len(w) > len(suffix) + 3 and w.endswith(suffix):
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


def coverage(question: str, passage: str, prefix: int = PREFIX) -> float:
    """Share of the question's content words that occur in `passage`, words compared
    by their first `prefix` letters; 0 for a question without content words.

    Example:
        >>> coverage("How does completion handle ambiguous words?", "Completing an ambiguous word")
        0.75
    """
    asked = {w[:prefix] for w in content_words(question)}
    if not asked:
        return 0.0
    return len(asked & {w[:prefix] for w in content_words(passage)}) / len(asked)
