"""File names in any bytes, as text SQLite, JSON and a terminal accept.

A Linux file name is bytes; Python hands an undecodable byte to us as a lone
surrogate (U+DC80..U+DCFF, PEP 383 "surrogateescape"), which SQLite, JSON
output and ``str.encode()`` all refuse. Every file path in a source, doc_id or
skipped path goes through ``encode_source`` once, where it is made; every
comparison of a real path with stored sources goes through the same function
(``stored_path``). Text from inside files (a jsonl ``_id``, a feed item id) is
only ``scrub``-bed: it was never bytes of a name.

The stored form (``encode_source``) is lossless and unambiguous:

- a valid UTF-8 name is stored unchanged, with one exception: U+FFFD itself
  (the escape character) is doubled;
- each byte that is not valid UTF-8 becomes U+FFFD followed by its value in
  two upper-case hex digits: ``b"caf\\xe9.txt"`` is stored as ``"caf\\ufffdE9.txt"``.

Read left to right, an escape is always followed by either U+FFFD or two hex
digits 80..FF (only those bytes can be undecodable), so ``decode_source``
recovers the exact bytes; a lone U+FFFD (from a store written before this
scheme) reads as itself. ``display`` is for people (titles, console lines):
each undecodable byte is one U+FFFD.
"""

from __future__ import annotations

import os
import re

ESCAPE = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_ENCODE = re.compile("[\ufffd\ud800-\udfff]")
_DECODE = re.compile("\ufffd(\ufffd|[89A-F][0-9A-F])")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"{ESCAPE}{code - 0xDC00:02X}"
    return ESCAPE * 2  # U+FFFD itself; or a surrogate no file name yields, shown as one


def encode_source(path: str | os.PathLike | bytes) -> str:
    """The stored (SQLite- and JSON-safe, lossless) form of a path or source.

    Example:
        >>> encode_source(os.fsdecode(b"/tmp/caf\\xe9.txt")) == "/tmp/caf\\ufffdE9.txt"
        True
        >>> encode_source("/tmp/café.txt")
        '/tmp/café.txt'
    """
    text = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
    return _ENCODE.sub(_escape, text)


def stored_path(path: str | os.PathLike | bytes) -> str:
    """The source a file at `path` is stored under: its real, absolute path, encoded.
    Ingest, prune and remove all compare paths through this one function."""
    return encode_source(os.path.realpath(path))  # never raises, even on a link loop


def files_of(source: str) -> list[str]:
    """The stored files `source` may come from, longest first: itself, or the part
    before a "#" (feed items and jsonl lines are "path#id", and a file name may
    hold "#" too)."""
    return [source] + [source[:i] for i in range(len(source) - 1, 0, -1) if source[i] == "#"]


def decode_source(stored: str) -> str:
    """The real path (undecodable bytes as surrogate escapes) of a stored source."""
    def unescape(match: re.Match) -> str:
        hex_or_escape = match.group(1)
        return ESCAPE if hex_or_escape == ESCAPE else chr(0xDC00 + int(hex_or_escape, 16))

    return _DECODE.sub(unescape, stored)


def display(path: str | os.PathLike | bytes) -> str:
    """A real path for people: each undecodable byte shown as U+FFFD (lossy)."""
    text = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
    if not _SURROGATE.search(text):
        return text
    try:
        return os.fsencode(text).decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate no file name yields
        return scrub(text)


def display_source(stored: str) -> str:
    """A stored source (or skipped path) for people, as `display` shows its path."""
    return display(decode_source(stored))


def scrub(text: str) -> str:
    """Text with any lone surrogate (from a file name or a JSON ``\\ud800`` escape)
    replaced by U+FFFD, so that it encodes as UTF-8."""
    return _SURROGATE.sub(ESCAPE, text) if _SURROGATE.search(text) else text
