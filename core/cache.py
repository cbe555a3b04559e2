"""A small thread-safe memo for what is costly to load and never changes once loaded.

Models and index files are loaded once per process and shared: a server, a
notebook that opens two stores, or an eval over several methods does not load
MiniLM twice. Entries are keyed by what identifies the content (a model name, an
index file's checksum), so a cached value is never stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
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

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
