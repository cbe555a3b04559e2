"""Turn raw bytes and markup into plain text worth embedding."""

from __future__ import annotations

import re
import unicodedata

_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_BLANKS = "\t\f\v\u00a0"  # each becomes a space; a run of spaces becomes one
_RUN = re.compile(r" {2,}")
# What else str.strip() removes from a line's ends (\x1c-\x1f are controls,
# deleted before): tests/test_load.py checks the list against str.isspace.
OTHER_SPACES = "\x85\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_OTHER_SPACE = re.compile(f"[{OTHER_SPACES}]")
# Control characters other than tab/newline survive decoding of some bad files
# and confuse tokenizers.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """NFC, unix newlines, no control characters, collapsed runs of blanks."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    # str methods, not a regular expression over every space or a loop over
    # lines: 3 times faster on /usr/share/doc, the same text (tests/test_load.py)
    for blank in _BLANKS:
        if blank in text:
            text = text.replace(blank, " ")
    if "  " in text:
        text = _RUN.sub(" ", text)
    if _OTHER_SPACE.search(text):  # rare (U+2003, U+3000 ...): strip line by line
        text = "\n".join(line.strip() for line in text.split("\n"))
    else:  # each line's ends hold at most one space now
        text = text.replace(" \n", "\n").replace("\n ", "\n")
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
# Characters XML (hence libxml2) refuses; trafilatura deletes them before parsing too.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def html_main_text(html: str) -> tuple[str, str]:
    """(title, main text) of a web page: boilerplate, navigation and scripts removed.

    Boilerplate tags are dropped first, so no heuristic can let them back in;
    trafilatura then finds the main content (as Markdown). On pages too small
    or odd for its heuristics it returns nothing, and the remaining body text
    is used.

    The page is parsed once, by lxml with trafilatura's own parser settings,
    and that tree is handed to trafilatura. (It was parsed by BeautifulSoup,
    written out again and re-parsed by trafilatura: three passes over the
    markup, 70% of the time, for the same text; `bench/ingest.py` compares.)
    """
    import trafilatura

    tree = _html_tree(html)
    if tree is None:
        return "", ""
    title = _element_text(tree.find(".//title")) or _element_text(tree.find(".//h1"))
    for tag in tree.xpath("|".join(f"//{t}" for t in _BOILERPLATE_TAGS)):
        tag.drop_tree()  # with its content; the text after it stays
    body = tree.find(".//body")
    body_text = normalize_text("\n".join((body if body is not None else tree).itertext()))
    if not body_text:
        return normalize_text(title), ""
    try:
        # Markdown output keeps headings and paragraph breaks for the chunker.
        extracted = trafilatura.extract(tree, output_format="markdown",
                                        include_comments=False, include_tables=True)
    except Exception:  # trafilatura on malformed input: the plain body text stands
        extracted = None
    return normalize_text(title), normalize_text(extracted or "") or body_text


def _html_tree(html: str):
    """The page as an lxml document (html and body added around a fragment), or None."""
    import lxml.etree
    import lxml.html
    from trafilatura.utils import HTML_PARSER

    html = _NOT_XML.sub("", html)
    if not html.strip():
        return None
    try:
        try:
            return lxml.html.document_fromstring(html, parser=HTML_PARSER)
        except ValueError:  # a str with an encoding declaration: parse its UTF-8 bytes
            return lxml.html.document_fromstring(html.encode("utf-8", "surrogatepass"),
                                                 parser=HTML_PARSER)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError):  # nothing lxml can read
        return None


def _element_text(element) -> str:
    """An element's text, its pieces stripped and joined by spaces ("" for None)."""
    if element is None:
        return ""
    return " ".join(part.strip() for part in element.itertext() if part.strip())
