"""Turn raw bytes and markup into plain text worth embedding."""

from __future__ import annotations

import re
import unicodedata

_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
# Control characters other than tab/newline survive decoding of some bad files
# and confuse tokenizers.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """NFC, unix newlines, no control characters, collapsed runs of blanks."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def decode_bytes(data: bytes) -> tuple[str, str | None]:
    """Decode text, returning (text, fallback encoding used or None for UTF-8).

    Non-UTF-8 files are common (old Windows exports); cp1252 covers most of them
    and latin-1 decodes any byte string, so decoding never fails.
    """
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KiB: no text format we read contains them."""
    return b"\x00" in data[:8192]


def html_fragment_text(html: str) -> str:
    """Text of an HTML fragment (a feed item's body), without scripts and styles."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return normalize_text(soup.get_text("\n"))


_BOILERPLATE_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer",
                     "aside", "form", "iframe", "svg")


def html_main_text(html: str) -> tuple[str, str]:
    """(title, main text) of a web page: boilerplate, navigation and scripts removed.

    Boilerplate tags are dropped first, so no heuristic can let them back in;
    trafilatura then finds the main content (as Markdown). On pages too small
    or odd for its heuristics it returns nothing, and the remaining body text
    is used.
    """
    import trafilatura
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if not title and soup.h1:
        title = soup.h1.get_text(" ", strip=True)
    for tag in soup(list(_BOILERPLATE_TAGS)):
        tag.decompose()
    body_text = normalize_text((soup.body or soup).get_text("\n"))
    if not body_text:
        return normalize_text(title), ""
    try:
        # Markdown output keeps headings and paragraph breaks for the chunker.
        extracted = trafilatura.extract(str(soup), output_format="markdown",
                                        include_comments=False, include_tables=True)
    except Exception:  # trafilatura on malformed input: the plain body text stands
        extracted = None
    return normalize_text(title), normalize_text(extracted or "") or body_text
