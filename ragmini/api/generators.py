"""Generators shared by the process: loaded once, whatever store or front end asks."""

from __future__ import annotations

import threading
from typing import Any

# Generators load once per process and are shared by every store (a server, a
# notebook with two stores); embedders are shared the same way by retrieval's memo.
_GENERATORS_LOCK = threading.Lock()
_GENERATORS: dict[tuple, Any] = {}


def shared_generator(name: str | None, allow_download: bool = False, fallback: bool = True,
                     base_url: str | None = None, torch: bool = False):
    """A generator by name (None: the configured default, `defaults.generator()`),
    loaded once per process. `torch`: the transformers model even where llama.cpp
    runs the packaged one (the lab reads its tokens and probabilities)."""
    from generation.models import default_generator, load_generator

    name = name or default_generator()
    key = (name, allow_download, fallback, base_url, torch)
    with _GENERATORS_LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = load_generator(name, allow_download=allow_download,
                                              fallback=fallback, base_url=base_url,
                                              torch=torch)
        return _GENERATORS[key]
