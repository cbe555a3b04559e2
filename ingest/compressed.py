"""Compressed documents: README.gz, changelog.Debian.gz, notes.md.xz, paper.pdf.bz2.

A file compressed with gzip, bzip2 or xz is read as what its inner name says
(`notes.md.gz` as Markdown) or, when the inner name has no suffix a format is
known by (`README.gz`, `changelog.Debian.gz`), as plain text, provided its
content is text. Decompression streams and stops one byte past the size
limit, so a decompression bomb (a few KB that inflate to gigabytes) costs no
more than the limit and is skipped with its reason. Documents keep the real
path (`README.gz`) as their source and id.

    >>> inner_name("docs/NEWS.gz")
    'NEWS'
    >>> decompress(gzip.compress(b"hello"), ".gz", limit=100)
    b'hello'
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import mimetypes
import zlib
from pathlib import PurePath

# suffix -> (format name, opener of a file object that decompresses while read)
_OPENERS = {
    ".gz": ("gzip", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    ".bz2": ("bzip2", bz2.BZ2File),
    ".xz": ("xz", lzma.LZMAFile),
}
COMPRESSED_SUFFIXES = frozenset(_OPENERS)
# Inner suffixes that name archives of several files: not one document.
ARCHIVE_SUFFIXES = frozenset({".tar", ".cpio"})


class CompressedError(Exception):
    """A compressed file that cannot be read: the message is the one-line reason."""


def is_compressed(path: str | PurePath) -> bool:
    return PurePath(path).suffix.lower() in COMPRESSED_SUFFIXES


def format_name(suffix: str) -> str:
    """"gzip", "bzip2" or "xz" for a compression suffix."""
    return _OPENERS[suffix.lower()][0]


def inner_name(path: str | PurePath) -> str:
    """The file's name without its compression suffix: "README.md.gz" -> "README.md"."""
    name = PurePath(path).name
    return name[: -len(PurePath(name).suffix)] if is_compressed(name) else name


def inner_suffix(path: str | PurePath) -> str:
    """The lower-cased suffix of the inner name ("" for "README.gz")."""
    return PurePath(inner_name(path)).suffix.lower()


def plain_text_name(path: str | PurePath) -> bool:
    """Is the inner name one whose suffix names no known format ("README",
    "changelog.Debian", "NEWS.old") or a text one? Such files are read as plain
    text; "data.json.gz" or "paper.ps.gz" are not (their content is not prose)."""
    suffix = inner_suffix(path)
    if suffix in ARCHIVE_SUFFIXES:
        return False
    kind, _ = mimetypes.guess_type("x" + suffix, strict=False) if suffix else (None, None)
    return kind is None or kind.startswith("text/")


def decompress(data: bytes, suffix: str, limit: int) -> bytes:
    """The decompressed bytes of `data` (a whole .gz, .bz2 or .xz file).

    Raises CompressedError when the data is corrupt or truncated, or when it
    inflates past `limit` bytes (read no further than that)."""
    fmt, opener = _OPENERS[suffix.lower()]
    try:
        with opener(io.BytesIO(data)) as stream:
            out = stream.read(limit + 1)
    except EOFError as exc:
        raise CompressedError(f"truncated {fmt} file (it ends before its end marker)") from exc
    except (OSError, zlib.error, lzma.LZMAError) as exc:  # BadGzipFile is an OSError
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise CompressedError(f"corrupt {fmt} file ({detail})") from exc
    if len(out) > limit:
        raise CompressedError(
            f"decompresses to more than {limit / 2**20:.0f} MiB ({len(data) / 2**10:.0f} KiB "
            f"compressed): a decompression bomb, or raise the limit with --max-file-mb")
    return out
