"""What a module-level call (`ragmini.evaluate(target)`, `ragmini.neighbors(...)`) is
given: a Store, a store folder, or a BEIR dataset folder."""

from __future__ import annotations

from pathlib import Path

from ragmini.api.records import PathLike
from ragmini.api.store import Store, open


def as_store(target: Store | PathLike) -> Store:
    """`target` if it is a Store, else the store opened at that path."""
    return target if isinstance(target, Store) else open(target)


def is_dataset(target: Store | PathLike) -> bool:
    """Whether `target` names a BEIR dataset folder rather than a store."""
    return not isinstance(target, Store) and (Path(target) / "corpus.jsonl").is_file()
