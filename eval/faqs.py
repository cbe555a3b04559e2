"""Build a real question-answering benchmark nobody here wrote: two FAQs shipped by Debian.

Sources: the Z shell FAQ (`FAQ.gz` in zsh-common, about 60 numbered questions
such as "3.1: Why does `$var' where `var="foo bar"' not do what I expect?")
and gitfaq(7) (git-man; its questions are sub-headings of its sections).

Query: the question as the FAQ asks it. Where a zsh heading only makes sense
inside its chapter ("What is it?", "Differences from sh and ksh") it is
completed from the chapter ("What is zsh?", "How does zsh differ from sh and
ksh?"); queries.jsonl keeps the FAQ's own heading in its metadata.
Document: the answer under it, reflowed
into paragraphs (code examples stay as lines), titled with its chapter or
section heading, never with the question, so the question is not in its
document verbatim. One answer per question; about a quarter of the answers
(a seeded, stable pick) are left out of the corpus: those questions are
unanswerable, and a RAG system should say so instead of answering.

    out/corpus.jsonl        {"_id": "zshfaq-3.1", "title": chapter, "text": answer, "source"}
    out/queries.jsonl       every question, answerable or not
    out/qrels/{dev,test}.tsv  answerable questions only (BEIR)
    out/questions/{dev,test}.txt  every question id of the split, one a line
    out/answers.jsonl       {"_id", "answer"}: the reference answer, null if unanswerable
    out/metadata.json

Questions are split dev/test (about 50/50) by a stable hash of their id; dev is
for calibrating thresholds, test for reporting.

Needs `apt-get` (packages are downloaded, never installed), `dpkg-deb`, `man`
and `col`, like eval/manpages.py whose download and render it reuses.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core.errors import RagminiError
from eval.manpages import _run, download, render

TEST_PERCENT = 50
UNANSWERABLE_PERCENT = 25
TOOLS = {"apt-get": "apt", "dpkg-deb": "dpkg", "man": "man-db", "col": "bsdextrautils"}


@dataclass(frozen=True)
class FaqSource:
    name: str  # id prefix: "zshfaq"
    package: str
    path: str  # inside the package; ".gz" is tried too
    label: str  # what the document titles call the FAQ


ZSH = FaqSource("zshfaq", "zsh-common", "usr/share/doc/zsh-common/FAQ", "Z shell FAQ")
GIT = FaqSource("gitfaq", "git-man", "usr/share/man/man7/gitfaq.7", "Git FAQ, gitfaq(7)")
SOURCES = (ZSH, GIT)


@dataclass(frozen=True)
class Question:
    qid: str  # "zshfaq-3.1"
    source: str  # "zshfaq"
    text: str  # the question, as asked
    heading: str  # the FAQ's own heading, where the question was completed from context
    chapter: str  # the document's title
    answer: str  # reflowed answer body


# --- reflowing hard-wrapped text -------------------------------------------------

_RULE = re.compile(r"^\s*-{5,}\s*$")
# A list item starts a line of its own: "o  text", "o * text", "1. ) text", "[1] text".
_BULLET = re.compile(r"^(?:o|\*|-)\s{2}|^o \*\s|^\d+\.\s?\)\s|^\[\d+\]\s")
_WORD = re.compile(r"^[(`'\"]?[A-Za-z][A-Za-z'-]*[)`'\".,;:!?]*$")
_CURLY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
WRAPPED_LINE = 45  # an indented line this long, not the last, was wrapped, not typed


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _blocks(lines: list[str]) -> list[list[str]]:
    """Runs of lines between whitespace-only lines."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _join(paragraph: str, line: str) -> str:
    # man breaks lines only at hyphens already in the word ("git-" / "config(1)").
    if re.search(r"[A-Za-z]-$", paragraph) and line[:1].isalpha():
        return paragraph + line
    return f"{paragraph} {line}"


def _items(block: list[str]) -> list[tuple[int, str]]:
    """Each bullet starts an item, every other line joins the one before: (indent, text)."""
    items: list[tuple[int, str]] = []
    for line in block:
        text = " ".join(line.split())
        if items and not _BULLET.match(line.strip()):
            items[-1] = (items[-1][0], _join(items[-1][1], text))
        else:
            items.append((_indent(line), text))
    return items


def _looks_wrapped(block: list[str]) -> bool:
    """Indented prose (a list item's later paragraph), not code: long lines of words."""
    if len(block) < 2 or any(len(line.strip()) < WRAPPED_LINE for line in block[:-1]):
        return False
    tokens = " ".join(block).split()
    return sum(bool(_WORD.match(t)) for t in tokens) >= 0.7 * len(tokens)


def _verbatim(lines: list[str]) -> str:
    cut = min(_indent(line) for line in lines)
    return "\n".join("    " + line[cut:] for line in lines)


def reflow(lines: list[str], prose_indent: int) -> str:
    """Join hard-wrapped prose into one line per paragraph or list item; keep code lines.

    A block (lines between blank ones) that starts at most `prose_indent` deep
    is prose. A deeper block is a nested list when it starts with a bullet,
    prose when its lines are long runs of words, otherwise code, kept line by
    line and indented by four spaces. Ruled tables keep their columns.
    """
    out = []
    for block in _blocks(lines):
        if any(_RULE.match(line) for line in block):
            out.append(_verbatim(block))
        elif _indent(block[0]) <= prose_indent or _looks_wrapped(block):
            out.append("\n".join(text for _, text in _items(block)))
        elif _BULLET.match(block[0].strip()):
            items = _items(block)
            cut = min(indent for indent, _ in items)
            out.append("\n".join(" " * (4 + indent - cut) + text for indent, text in items))
        else:
            out.append(_verbatim(block))
    return "\n\n".join(out)


def _clean(text: str) -> str:
    return " ".join(text.translate(_CURLY).split())


def _is_stub(answer: str) -> bool:
    """Empty, or only a pointer elsewhere ("See question 3.2.")."""
    words = answer.split()
    return len(words) < 4 or (len(words) < 20 and re.match(r"\(?(see|look at|refer to)\b",
                                                            answer, re.I) is not None)


# --- the zsh FAQ -------------------------------------------------------------------

_ZSH_CHAPTER = re.compile(r"^Chapter (\d+): +(.+?)\s*$")
_ZSH_QUESTION = re.compile(r"^(\d+)\.(\d+): +(.+?)\s*$")
_ZSH_TOC_ENTRY = re.compile(r"^(\d+)\.(\d+)\. +(.+?)\s*$")
_ZSH_END_OF_TOC = "--- End of Contents ---"
_ZSH_TRAILER = re.compile(r"^(Acknowledg[e]?ments|Copyright Information):\s*$")


def _zsh_question_text(heading: str, toc_entry: str | None, chapter: str,
                       chapter_no: str) -> str:
    """The question the heading means, read with its chapter, so it stands alone."""
    # Chapter 2 is "How does zsh differ from...?" and its body headings are
    # statements ("Differences from sh and ksh"); the contents line "sh and ksh?"
    # completes the chapter title into the question the FAQ means.
    if "?" not in heading and toc_entry and chapter.endswith("...?"):
        return f"{chapter[:-4].rstrip()} {toc_entry}"
    # Chapter 1 introduces zsh: its "What is it?" asks about zsh, which a
    # query mixed with other FAQs must say.
    if chapter_no == "1" and "zsh" not in heading:
        return re.sub(r"\bit\b", "zsh", heading)
    return heading


def parse_zsh_faq(text: str) -> list[Question]:
    """Questions of the zsh FAQ's plain-text version, contents and trailer dropped."""
    if _ZSH_END_OF_TOC not in text:
        raise RagminiError(f"the zsh FAQ has no '{_ZSH_END_OF_TOC}' line: its layout "
                           "changed; update parse_zsh_faq in eval/faqs.py")
    head, body = text.split(_ZSH_END_OF_TOC, 1)
    toc = {(m[1], m[2]): m[3] for line in head.splitlines() if (m := _ZSH_TOC_ENTRY.match(line))}
    questions = []
    chapter_no, chapter, current, lines = "", "", None, []

    def close():
        if current:
            number, heading = current
            answer = reflow(lines, prose_indent=2)
            heading = _clean(heading)
            asked = _zsh_question_text(heading, toc.get(number), chapter, chapter_no)
            questions.append(Question(f"zshfaq-{number[0]}.{number[1]}", ZSH.name, _clean(asked),
                                      heading, f"{ZSH.label}, Chapter {chapter_no}: {chapter}",
                                      answer))

    for line in body.splitlines():
        if m := _ZSH_CHAPTER.match(line):
            close()
            chapter_no, chapter, current, lines = m[1], _clean(m[2]), None, []
        elif m := _ZSH_QUESTION.match(line):
            close()
            current, lines = ((m[1], m[2]), m[3]), []
        elif _ZSH_TRAILER.match(line):
            close()
            current, lines = None, []
        elif current:
            lines.append(line)
    close()
    return questions


# --- gitfaq(7) -----------------------------------------------------------------------

_MAN_SECTION = re.compile(r"^[A-Z][A-Z0-9 ,/&()-]*$")
_GIT_SKIP = {"NAME", "SYNOPSIS", "DESCRIPTION", "GIT", "SEE ALSO"}


def _man_sections(rendered: str) -> list[tuple[str, list[str]]]:
    lines = rendered.rstrip("\n").split("\n")
    # Header (first non-empty line) and footer (last) name the page, nothing more.
    body = [line for line in lines if line.strip()]
    first, last = lines.index(body[0]), len(lines) - 1 - lines[::-1].index(body[-1])
    sections: list[tuple[str, list[str]]] = []
    for line in lines[first + 1:last]:
        if line and not line[0].isspace() and _MAN_SECTION.match(line.strip()):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line)
    return sections


def parse_gitfaq(rendered: str) -> list[Question]:
    """Questions of gitfaq(7) rendered by man: sub-headings (which may wrap) and bodies."""
    questions = []
    sections = [(h, ls) for h, ls in _man_sections(rendered) if h not in _GIT_SKIP]
    for s_no, (heading, lines) in enumerate(sections, 1):
        depth = min((_indent(line) for line in lines if line.strip()), default=0)
        entries: list[tuple[list[str], list[str]]] = []  # (heading lines, body lines)
        for line in lines:
            if line.strip() and _indent(line) == depth:
                if entries and not entries[-1][1]:  # a wrapped heading goes on
                    entries[-1][0].append(line)
                else:
                    entries.append(([line], []))
            elif entries:
                entries[-1][1].append(line)
        chapter = f"{GIT.label}, {heading.capitalize()}"
        for q_no, (asked, body) in enumerate(entries, 1):
            # The body is indented deeper than its heading; code deeper still.
            prose = min((_indent(line) for line in body if line.strip()), default=0)
            answer = reflow([line.translate(_CURLY) for line in body], prose_indent=prose)
            asked_text = _clean(" ".join(asked))
            questions.append(Question(f"gitfaq-{s_no}.{q_no}", GIT.name, asked_text, asked_text,
                                      chapter, answer))
    return questions


# --- download, locate, split ---------------------------------------------------------


def _check_tools() -> None:
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in TOOLS.items()
               if shutil.which(tool) is None]
    if missing:
        raise RagminiError("the FAQ builder needs Debian's tools; missing: " + ", ".join(missing)
                           + ". Run it on Debian or Ubuntu, e.g. in a debian:bookworm container")


def _unpack(work: Path, source: FaqSource) -> Path:
    """dpkg-deb -x the source's package (never installed); the FAQ file inside it."""
    debs = sorted((work / "debs").glob(f"{source.package}_*.deb"))
    if not debs:
        raise RagminiError(f"no {source.package} .deb in {work / 'debs'}; rerun with update=True")
    root = work / "root" / source.package
    if not root.exists():
        root.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(debs[-1]), str(root)])
    for candidate in (root / source.path, root / f"{source.path}.gz"):
        if candidate.is_file():
            return candidate
    raise RagminiError(f"{source.package} holds no {source.path}[.gz]: its layout changed; "
                       "update SOURCES in eval/faqs.py")


def _read(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _hash(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def split_of(qid: str) -> str:
    return "test" if _hash(qid) % 100 < TEST_PERCENT else "dev"


def pick_unanswerable(qids: list[str], percent: int, seed: int) -> set[str]:
    """About `percent`% of each split, by a seeded hash: the same ids every build.

    Picked per split, at least one where a split has two or more questions, so
    that dev and test both hold unanswerable questions even in a small build.
    """
    picked: set[str] = set()
    for split in ("dev", "test"):
        members = sorted((q for q in qids if split_of(q) == split),
                         key=lambda q: (_hash(f"{seed}:{q}"), q))
        count = round(len(members) * percent / 100)
        if percent > 0 and count == 0 and len(members) >= 2:
            count = 1
        picked.update(members[:count])
    return picked


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"faqs: {message}", file=sys.stderr, flush=True)


def collect(work: Path, versions: dict[str, str], limit: int | None,
            progress: bool) -> tuple[list[Question], dict[str, dict]]:
    """Parse each FAQ; its first `limit` usable questions, and what was dropped."""
    questions, sources = [], {}
    for source in SOURCES:
        path = _unpack(work, source)
        _say(progress, f"parsing {path.name} from {source.package} {versions[source.package]}")
        text = render(path) if source is GIT else _read(path)
        parsed = parse_gitfaq(text) if source is GIT else parse_zsh_faq(text)
        if not parsed:
            raise RagminiError(f"found no questions in {source.path} of {source.package}: its "
                               "layout changed; update the parser in eval/faqs.py")
        kept = [q for q in parsed if not _is_stub(q.answer)]
        sources[source.name] = {"package": source.package,
                                "version": versions[source.package],
                                "file": str(path.relative_to(work / "root" / source.package)),
                                "questions_in_faq": len(parsed),
                                "dropped_stub_answers": [q.qid for q in parsed if q not in kept]}
        questions.extend(kept[:limit] if limit is not None else kept)
    return questions, sources


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write(out: Path, questions: list[Question], unanswerable: set[str]) -> dict[str, dict]:
    """The dataset files; returns counts per split."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    (out / "questions").mkdir(exist_ok=True)
    answerable = [q for q in questions if q.qid not in unanswerable]
    _write_jsonl(out / "corpus.jsonl", [{"_id": q.qid, "title": q.chapter, "text": q.answer,
                                         "source": q.source} for q in answerable])
    _write_jsonl(out / "queries.jsonl", [
        {"_id": q.qid, "text": q.text,
         "metadata": {"source": q.source, "heading": q.heading, "split": split_of(q.qid),
                      "answerable": q.qid not in unanswerable}} for q in questions])
    _write_jsonl(out / "answers.jsonl", [
        {"_id": q.qid, "answer": None if q.qid in unanswerable else q.answer} for q in questions])
    counts = {}
    for split in ("dev", "test"):
        members = [q for q in questions if split_of(q.qid) == split]
        judged = [q for q in members if q.qid not in unanswerable]
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as handle:
            handle.write("query-id\tcorpus-id\tscore\n")
            handle.writelines(f"{q.qid}\t{q.qid}\t1\n" for q in judged)
        (out / "questions" / f"{split}.txt").write_text("".join(f"{q.qid}\n" for q in members))
        counts[split] = {"questions": len(members), "answerable": len(judged),
                         "unanswerable": len(members) - len(judged)}
    return counts


def build(out: Path, work: Path | None = None, update: bool = True, progress: bool = True,
          unanswerable_percent: int = UNANSWERABLE_PERCENT, seed: int = 0,
          limit: int | None = None) -> dict:
    """Download, parse and write the QA folder `out`; returns the metadata."""
    if not 0 <= unanswerable_percent <= 100:
        raise RagminiError(f"unanswerable_percent must be 0..100, not {unanswerable_percent}")
    if limit is not None and limit < 1:
        raise RagminiError(f"limit must be a positive number of questions per FAQ, not {limit}")
    _check_tools()
    out = Path(out)
    work = Path(work) if work else out / ".work"
    packages = tuple(s.package for s in SOURCES)
    _say(progress, f"downloading {', '.join(packages)} into {work / 'debs'}")
    versions = download(packages, work, update)
    questions, sources = collect(work, versions, limit, progress)
    unanswerable = pick_unanswerable([q.qid for q in questions], unanswerable_percent, seed)
    _say(progress, f"writing {len(questions)} questions ({len(unanswerable)} unanswerable) "
                   f"to {out}")
    counts = write(out, questions, unanswerable)
    verbatim = [q.qid for q in questions
                if q.text.lower() in f"{q.chapter}\n{q.answer}".lower()]
    words = sorted(len(q.answer.split()) for q in questions)
    metadata = {
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "FAQ question -> its answer section; some answers removed (unanswerable)",
        "sources": sources,
        "questions": len(questions),
        "answerable": len(questions) - len(unanswerable),
        "unanswerable": len(unanswerable),
        "splits": counts,
        "unanswerable_percent": unanswerable_percent,
        "seed": seed,
        "limit": limit,
        "test_percent": TEST_PERCENT,
        "median_words_per_answer": words[len(words) // 2] if words else 0,
        "questions_verbatim_in_answer": verbatim,
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    if work == out / ".work":
        shutil.rmtree(work, ignore_errors=True)
    return metadata
