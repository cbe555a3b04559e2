"""Build a real retrieval benchmark nobody here wrote: Debian man pages, the apropos task.

Query: a page's one-line NAME description ("copy files and directories").
Relevant: that page, rendered to text with its header, footer and whole NAME
section removed (so the answer is not in the document verbatim by
construction). Pages sharing a description are all relevant. Index pages
that list other pages' descriptions (git(1), systemd.index(7)) are dropped.
Queries are split dev/test (about 30% test) by a stable hash of the page name.

    ragmini datasets build manpages --out data/manpages

Needs `apt-get` (packages are downloaded, never installed), `dpkg-deb`, `man`
and `col` (man-db, groff-base, bsdextrautils): all present on Debian.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core.errors import RagminiError

PACKAGES = ("manpages", "manpages-dev", "coreutils", "util-linux", "findutils", "grep", "sed",
            "tar", "git-man", "openssh-client", "iproute2", "systemd", "openssl", "procps",
            "dpkg", "apt")
TEST_PERCENT = 30
INDEX_PAGE_MIN_LISTED = 8  # a page quoting this many other pages' descriptions is an index
_MAN_DIR = re.compile(r"usr/share/man/man([1-9])[^/]*/([^/]+)$")
_SECTION = re.compile(r"^[A-Z][A-Z0-9 ,/&()-]*$")


@dataclass(frozen=True)
class Page:
    page_id: str  # "cp.1"
    title: str  # "cp(1)"
    description: str  # from NAME
    text: str  # rendered, without header, footer and NAME
    package: str


def _run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        raise RagminiError(f"`{cmd[0]}` is not installed; the man-page builder needs apt-get, "
                           "dpkg-deb, man and col (Debian packages apt, dpkg, man-db, "
                           "bsdextrautils)") from None
    if proc.returncode != 0:
        raise RagminiError(f"`{' '.join(cmd[:3])} ...` failed: "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return proc.stdout


def download(packages: tuple[str, ...], work: Path, update: bool = True) -> dict[str, str]:
    """apt-get download each package into work/debs; returns {package: version}."""
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if update:
        _run(["apt-get", "update", "-qq"])
    try:
        _run(["apt-get", "download", "-qq", *packages], cwd=debs)
    except RagminiError:
        if update:
            raise
        # A fresh machine may have no package lists yet: fetch them once and retry.
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "download", "-qq", *packages], cwd=debs)
    versions = {}
    for deb in sorted(debs.glob("*.deb")):
        fields = _run(["dpkg-deb", "-f", str(deb), "Package", "Version"])
        meta = dict(line.split(": ", 1) for line in fields.strip().splitlines() if ": " in line)
        if meta.get("Package") in packages:
            versions[meta["Package"]] = meta["Version"]
    missing = sorted(set(packages) - set(versions))
    if missing:
        raise RagminiError(f"apt-get downloaded nothing for: {', '.join(missing)}")
    return versions


def extract(work: Path, packages: dict[str, str]) -> list[tuple[Path, str]]:
    """Unpack each .deb (no install) and list its English man pages: (file, package)."""
    pages = []
    for deb in sorted((work / "debs").glob("*.deb")):
        package = deb.name.split("_", 1)[0]
        if package not in packages:
            continue
        root = work / "root" / package
        if not root.exists():
            root.mkdir(parents=True)
            _run(["dpkg-deb", "-x", str(deb), str(root)])
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            # English pages only (localised ones live in man/<lang>/), no symlinks.
            if _MAN_DIR.match(rel) and path.is_file() and not path.is_symlink():
                pages.append((path, package))
    return pages


def _is_redirect(path: Path) -> bool:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as handle:
        head = handle.read(200).lstrip()
    return head.startswith(".so ")


def render(path: Path) -> str:
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""}
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    out = subprocess.run(["man", "--local-file", "--no-hyphenation", "--no-justification",
                          str(path)], env=env, capture_output=True, timeout=120)
    text = subprocess.run(["col", "-bx"], input=out.stdout, capture_output=True,
                          timeout=120).stdout
    return text.decode("utf-8", errors="replace")


def parse(rendered: str, page_id: str, package: str) -> Page | None:
    """Split a rendered page into description and body; None if it has no NAME line."""
    lines = rendered.rstrip("\n").split("\n")
    # Header (first non-empty line) and footer (last non-empty line) name the page.
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 3:
        return None
    lines = lines[1:-1]
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        if line and not line[0].isspace() and _SECTION.match(line.strip()):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line)
    name = next((body for head, body in sections if head == "NAME"), None)
    if not name:
        return None
    name_text = " ".join(" ".join(name).split())
    match = re.search(r"\s[-\u2010\u2013\u2014]+\s(.+)$", name_text)
    if not match:
        return None
    description = match.group(1).strip().rstrip(".")
    body = "\n".join(
        f"{head}\n" + "\n".join(b) for head, b in sections if head != "NAME"
    )
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    name, section = page_id.rsplit(".", 1)
    return Page(page_id, f"{name}({section})", description, body, package)


def _page_id(path: Path) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem, _, section = name.rpartition(".")
    return f"{stem}.{section}" if stem else name


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def split_of(page_id: str) -> str:
    digest = int(hashlib.sha1(page_id.encode()).hexdigest()[:8], 16)
    return "test" if digest % 100 < TEST_PERCENT else "dev"


def build(out: Path, packages: tuple[str, ...] = PACKAGES, work: Path | None = None,
          update: bool = True, workers: int | None = None, progress: bool = True) -> dict:
    """Download, render and write the BEIR folder `out`; returns the metadata."""
    out = Path(out)
    work = Path(work) if work else out / ".work"
    versions = download(tuple(packages), work, update)
    files = [(p, pkg) for p, pkg in extract(work, versions) if not _is_redirect(p)]
    seen: dict[str, tuple[Path, str]] = {}
    for path, package in files:  # the same page in two packages: keep the first
        seen.setdefault(_page_id(path), (path, package))
    from tqdm import tqdm

    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
        rendered = dict(zip(seen, tqdm(pool.map(lambda item: render(item[0]), seen.values()),
                                       total=len(seen), desc="rendering", unit="page",
                                       disable=not progress or None, leave=False)))
    pages = [p for pid, (_, pkg) in seen.items() if (p := parse(rendered[pid], pid, pkg))]
    unparsed = len(seen) - len(pages)
    pages = [p for p in pages if p.text.strip()]

    # Index pages quote many other pages' descriptions; as documents they would
    # be "relevant" to everything, so they go.
    descriptions = {_norm(p.description) for p in pages if len(p.description.split()) >= 3}
    index_pages = []
    for p in pages:
        body = _norm(p.text)
        listed = sum(1 for d in descriptions if d != _norm(p.description) and d in body)
        if listed >= INDEX_PAGE_MIN_LISTED:
            index_pages.append(p.page_id)
    pages = [p for p in pages if p.page_id not in set(index_pages)]

    groups: dict[str, list[Page]] = {}
    for p in pages:
        groups.setdefault(_norm(p.description), []).append(p)
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with open(out / "corpus.jsonl", "w") as handle:
        for p in sorted(pages, key=lambda p: p.page_id):
            handle.write(json.dumps({"_id": p.page_id, "title": p.title, "text": p.text,
                                     "package": p.package}) + "\n")
    counts = {"dev": 0, "test": 0}
    verbatim = 0
    with open(out / "queries.jsonl", "w") as q_handle, \
            open(out / "qrels" / "dev.tsv", "w") as dev, open(out / "qrels" / "test.tsv", "w") as test:
        for handle in (dev, test):
            handle.write("query-id\tcorpus-id\tscore\n")
        for key in sorted(groups):
            members = sorted(groups[key], key=lambda p: p.page_id)
            qid = "q-" + hashlib.sha1(key.encode()).hexdigest()[:10]
            in_page = any(key in _norm(p.text) for p in members)
            verbatim += in_page
            split = split_of(members[0].page_id)
            counts[split] += 1
            q_handle.write(json.dumps({"_id": qid, "text": members[0].description,
                                       "metadata": {"pages": [p.page_id for p in members],
                                                    "verbatim_in_page": in_page,
                                                    "split": split}}) + "\n")
            for p in members:
                (test if split == "test" else dev).write(f"{qid}\t{p.page_id}\t1\n")
    words = sorted(len(p.text.split()) for p in pages)
    metadata = {
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "apropos: NAME description -> man page",
        "packages": versions,
        "pages": len(pages),
        "queries": counts,
        "median_words_per_page": words[len(words) // 2] if words else 0,
        "dropped_index_pages": sorted(index_pages),
        "unparsed_pages": unparsed,
        "queries_verbatim_in_page": verbatim,
        "test_percent": TEST_PERCENT,
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    if work == out / ".work":
        shutil.rmtree(work, ignore_errors=True)
    return metadata
