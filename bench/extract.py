"""Extraction quality on documents nobody here wrote: the man-page benchmark's pages
rendered to PDF by groff (and to DOCX, EPUB and ODT by pandoc), read back by each
library, scored against the plain-text corpus; then the retrieval eval on the
PDF-extracted corpus.

    python -m bench.extract [--sample 300] [--no-eval]     # make bench-extract

Needs data/manpages (`ragmini datasets build manpages --out data/manpages`), groff
with its PDF device and pandoc (`make groff pandoc`), and apt-get download for the
pages' sources (the same Debian packages the benchmark was built from).

- The NAME section is cut from each source before rendering, as the benchmark cuts
  it from its text (the query is that line).
- True text: the benchmark's own text of the page (`man` rendered to plain text).
  Token F1 is over lower-cased word tokens, as multisets.
- PDF: groff's defaults (justified, hyphenated, running header and footer on every
  page): what a user's PDF of a man page looks like.
- Libraries on the PDFs: ragmini's loader (pypdfium2 + header/footer and hyphen
  handling), raw pypdfium2, pypdf, pdfplumber; pages/s on one core.
- The retrieval eval: a BEIR folder data/manpages-pdf whose corpus is ragmini's
  PDF extraction of every page (same ids, queries and qrels), evaluated with
  sbert and bm25 on the test split, against data/manpages.

Writes bench/extract_results.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

if not __package__:  # `python bench/extract.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    DATA,
    MANPAGES,
    cache_root,
    write_results,
)
WORK = cache_root() / "extract-bench"
_TOKEN = re.compile(r"\w+")


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def token_f1(found: str, truth: str) -> float:
    a, b = Counter(_TOKEN.findall(found.lower())), Counter(_TOKEN.findall(truth.lower()))
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def sources(corpus: dict[str, dict]) -> dict[str, Path]:
    """The man source of every benchmark page, from the same Debian packages."""
    from eval.manpages import PACKAGES, _page_id, download, extract

    work = WORK / "debs-work"
    versions = download(PACKAGES, work, update=False)
    found: dict[str, Path] = {}
    for path, _ in extract(work, versions):
        page = _page_id(path)
        if page in corpus and page not in found:
            found[page] = path
    return found


def without_name(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as handle:
        lines = handle.read().split("\n")
    out, skipping = [], False
    for line in lines:
        if re.match(r"^\.S[Hh]\s", line):
            skipping = bool(re.match(r'^\.S[Hh]\s+"?NAME"?\s*$', line.strip()))
        if not skipping:
            out.append(line)
    return "\n".join(out)


def render_all(pages: dict[str, Path], out: Path, formats: tuple[str, ...],
               sample: set[str]) -> dict[str, dict[str, Path]]:
    """{format: {page id: file}}: PDF for every page, the pandoc formats for `sample`."""
    made: dict[str, dict[str, Path]] = {f: {} for f in ("pdf", *formats)}
    (out / "src").mkdir(parents=True, exist_ok=True)

    def one(item):
        page, path = item
        src = out / "src" / f"{page}.man"
        if not src.exists():
            src.write_text(without_name(path))
        done = {}
        pdf = out / "pdf" / f"{page}.pdf"
        if not pdf.exists():
            pdf.parent.mkdir(exist_ok=True)
            # -k: preconv reads the UTF-8 sources (without it dashes and quotes are mojibake)
            r = subprocess.run(["groff", "-k", "-man", "-Tpdf", "-t", str(src)],
                               capture_output=True, timeout=120)
            if r.returncode == 0 and r.stdout:
                pdf.write_bytes(r.stdout)
        if pdf.exists():
            done["pdf"] = pdf
        if page in sample:
            for fmt in formats:
                target = out / fmt / f"{page}.{fmt}"
                if not target.exists():
                    target.parent.mkdir(exist_ok=True)
                    subprocess.run(["pandoc", "-f", "man", "-t", fmt, "-o", str(target),
                                    str(src)], capture_output=True, timeout=120)
                if target.exists():
                    done[fmt] = target
        return page, done

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        for page, done in pool.map(one, sorted(pages.items())):
            for fmt, path in done.items():
                made[fmt][page] = path
    return made


def pdf_readers() -> dict:
    def ragmini_loader(data: bytes) -> str:
        from ingest.documents import extract

        return extract(".pdf", data).text

    def pypdfium2_raw(data: bytes) -> str:
        import pypdfium2 as pdfium

        doc = pdfium.PdfDocument(data)
        text = "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
        doc.close()
        return text

    def pypdf(data: bytes) -> str:
        import io

        from pypdf import PdfReader

        return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)

    def pdfplumber(data: bytes) -> str:
        import io

        import pdfplumber as plumber

        with plumber.open(io.BytesIO(data)) as pdf:
            return "\n".join(p.extract_text() or "" for p in pdf.pages)

    return {"ragmini (pypdfium2 + cleaning)": ragmini_loader, "pypdfium2 raw": pypdfium2_raw,
            "pypdf": pypdf, "pdfplumber": pdfplumber}


def score(reader, files: dict[str, Path], truth: dict[str, str]) -> dict:
    import pypdfium2 as pdfium

    f1s, failures, seconds, pages = [], [], 0.0, 0
    for page, path in sorted(files.items()):
        data = path.read_bytes()
        if path.suffix == ".pdf":
            doc = pdfium.PdfDocument(data)
            pages += len(doc)
            doc.close()
        t = time.perf_counter()
        try:
            text = reader(data)
        except Exception as exc:  # counted, not fatal: that is the measurement
            failures.append(f"{page}: {type(exc).__name__}: {str(exc)[:80]}")
            text = ""
        seconds += time.perf_counter() - t
        f1s.append(token_f1(text, truth[page]))
    out = {"documents": len(files), "token_f1_mean": statistics.fmean(f1s),
           "token_f1_median": statistics.median(f1s), "token_f1_min": min(f1s),
           "docs_per_s": len(files) / seconds, "failures": len(failures),
           "failure_examples": failures[:5]}
    if pages:
        out["pages"], out["pages_per_s"] = pages, pages / seconds
    return out


def pdf_corpus(files: dict[str, Path], corpus: dict[str, dict], out: Path) -> Path:
    """A BEIR folder like data/manpages whose texts are ragmini's PDF extraction."""
    from ingest.documents import extract

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w") as handle:
        for page, row in corpus.items():
            if page not in files:
                continue
            text = extract(".pdf", files[page].read_bytes()).text
            handle.write(json.dumps({**row, "text": text}) + "\n")
    for name in ("queries.jsonl", "metadata.json"):
        shutil.copy(MANPAGES / name, out / name)
    shutil.copytree(MANPAGES / "qrels", out / "qrels", dirs_exist_ok=True)
    return out


def retrieval(datasets: dict[str, Path], split: str) -> dict:
    from eval.runs import evaluate_dataset

    out = {}
    for label, folder in datasets.items():
        log("eval", label)
        run = evaluate_dataset(folder, split=split, methods=["bm25", "sbert"], progress=False)[0]
        out[label] = {m: {k: r.metrics[k] for k in ("recall@10", "mrr@10", "ndcg@10")}
                      for m, r in run.result.methods.items()}
    return out


def dependency_cost() -> dict:
    """Installed size of each reader library and what it pulls in (MiB)."""
    import importlib.metadata as md

    def size(dist: str) -> float:
        files = md.distribution(dist).files or []
        return sum((Path(md.distribution(dist).locate_file(f)).stat().st_size
                    for f in files if Path(md.distribution(dist).locate_file(f)).exists()),
                   0) / 2**20

    out = {}
    for dist in ("pypdfium2", "python-docx", "EbookLib", "odfpy", "defusedxml", "six",
                 "pypdf", "pdfplumber", "pdfminer.six"):
        try:
            out[dist] = round(size(dist), 2)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=300,
                        help="pages for pdfplumber, pypdf and the pandoc formats")
    parser.add_argument("--split", default="test")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH / "extract_results.json")
    args = parser.parse_args()

    corpus = {json.loads(line)["_id"]: json.loads(line)
              for line in open(MANPAGES / "corpus.jsonl")}
    truth = {page: row["text"] for page, row in corpus.items()}
    log(f"{len(corpus)} pages; finding their sources")
    found = sources(corpus)
    rng = random.Random(0)
    sample = set(rng.sample(sorted(found), min(args.sample, len(found))))
    t = time.perf_counter()
    files = render_all(found, WORK / "rendered", ("docx", "epub", "odt"), sample)
    log(f"rendered in {time.perf_counter() - t:.0f} s:",
        {fmt: len(v) for fmt, v in files.items()})
    results: dict = {"pages_in_benchmark": len(corpus), "sources_found": len(found),
                     "rendered": {fmt: len(v) for fmt, v in files.items()},
                     "sample": len(sample), "pdf": {}, "other": {}}
    readers = pdf_readers()
    for name, reader in readers.items():
        subset = files["pdf"] if name in ("ragmini (pypdfium2 + cleaning)", "pypdfium2 raw") \
            else {p: f for p, f in files["pdf"].items() if p in sample}
        results["pdf"][name] = score(reader, subset, truth)
        log(name, {k: v for k, v in results["pdf"][name].items() if k != "failure_examples"})
    from ingest.documents import extract

    for fmt in ("docx", "epub", "odt"):
        results["other"][fmt] = score(lambda data, f=fmt: extract(f".{fmt}", data).text,
                                      files[fmt], truth)
        log(fmt, {k: v for k, v in results["other"][fmt].items() if k != "failure_examples"})
    results["dependency_mib"] = dependency_cost()
    if not args.no_eval:
        pdf_folder = pdf_corpus(files["pdf"], corpus, DATA / "manpages-pdf")
        results["retrieval"] = retrieval({"plain text": MANPAGES, "pdf": pdf_folder},
                                         args.split)
        results["retrieval"]["split"] = args.split
    write_results("extract", results, out=args.out)
    print(json.dumps({k: v for k, v in results.items()}, indent=1)[:5000])


if __name__ == "__main__":
    main()
