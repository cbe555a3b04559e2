"""Generators shared by the process: loaded once, whatever store or front end asks."""

from __future__ import annotations

import threading
from typing import Any

# Generators load once per process and are shared by every store (a server, a
# notebook with two stores); embedders are shared the same way by retrieval's memo.
_GENERATORS_LOCK = threading.Lock()
_GENERATORS: dict[tuple, Any] = {}


def shared_generator(name: str, allow_download: bool = False, fallback: bool = True):
    """A generator by name, loaded once per process."""
    from generation.models import load_generator

    key = (name, allow_download, fallback)
    with _GENERATORS_LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = load_generator(name, allow_download=allow_download,
                                              fallback=fallback)
        return _GENERATORS[key]
