"""A small thread-safe memo for what is costly to load and never changes once loaded.

Models and index files are loaded once per process and shared: a server, a
notebook that opens two stores, or an eval over several methods does not load
MiniLM twice. Entries are keyed by what identifies the content (a model name, an
index file's checksum), so a cached value is never stale.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any


class Memo:
    """Least-recently-used memo of at most `size` values; `get(key, load)` loads once,
    even when several threads ask at the same time."""

    def __init__(self, size: int = 16):
        self.size = size
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = load()
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.size:
                    self._values.popitem(last=False)
                self._loading.pop(key, None)
            return value

    def pop(self, key: Hashable) -> Any:
        """Forget `key`; its value, or None."""
        with self._lock:
            return self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def build_folder(folder: Path, fill: Callable[[Path], dict]) -> dict:
    """Build a derived-model folder once and atomically: `fill(tmp)` writes its files
    into a temporary sibling and returns its parameters, written last as
    params.json; then the folder is renamed into place, so a killed build leaves
    nothing half-written. If another process finished first, its folder is kept
    (it is as good). Returns the parameters."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        params = fill(tmp)
        (tmp / "params.json").write_text(json.dumps(params, indent=2))
        try:
            tmp.rename(folder)
        except OSError:
            if not (folder / "params.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return params
