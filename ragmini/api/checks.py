"""Argument checks the API's calls share: lists of whole numbers, recall cut-offs,
method names. Each raises QueryError naming the parameter."""

from __future__ import annotations

from collections.abc import Sequence

from ragmini.api.errors import QueryError, no_string


def check_methods(names: Sequence[str]) -> list[str]:
    """`names` if every one is a method the registry knows (a fusion through its
    parts), else QueryError listing the valid names."""
    from retrieval.methods import parse_methods

    return parse_methods(no_string(names, "methods"))


def ints(value: int | Sequence[int], name: str) -> list[int]:
    """A list of whole numbers from one or several, or QueryError naming `name`."""
    values = [value] if isinstance(value, int) else list(value)
    if not values or not all(isinstance(v, int) for v in values):
        raise QueryError(f"{name} takes a whole number or a list of them", param=name)
    return values


def parse_ints(value: str, name: str) -> list[int]:
    """[150, 200] from a flag's "150,200" (the evaluator's own parser), or an error
    naming `name`."""
    from eval.runs import parse_ints as parse

    return parse(value, name)


def cutoffs_of(ks: Sequence[int] | None) -> tuple[int, ...] | None:
    """Sorted distinct recall cut-offs, each at least 1 (None: the evaluator's)."""
    if ks is None:
        return None
    cutoffs = tuple(sorted(set(ints(list(ks), "k"))))
    if cutoffs[0] < 1:
        raise QueryError("k values must be at least 1", param="k")
    return cutoffs
