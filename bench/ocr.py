"""OCR, measured: Tesseract's character error rate on rasterised man pages (150 and 300
dpi) and on a DOCX-rendered page with a table, seconds per page, and recall@10 on an
image-only copy of a sample of the man-page test split against the same pages as text
PDFs.

    python -m bench.ocr [--cer-pages 12] [--queries 50] [--distractors 100] [--dpi 200]

Needs the man-page benchmark (data/manpages, else /work/data/manpages), groff's PDF
device, pandoc and Tesseract (`make groff pandoc tesseract`), and apt-get download for
the pages' sources (bench/extract.py's `sources`: the Debian packages the benchmark
was built from; its rendered PDFs are shared with bench/extract.py).

- CER: the first page of `--cer-pages` man pages (groff PDFs, NAME section cut as in
  bench/extract.py), rendered to grayscale PNG at 150 and 300 dpi by PDFium and read
  by `ingest.ocr.ocr_image` (one Tesseract process, OMP_THREAD_LIMIT=1). The truth is
  the PDF's own text layer of that page (PDFium). CER = Levenshtein distance / truth
  length, summed over pages, after Unicode NFC and collapsing whitespace ("raw"); also
  with dashes, quotes and ligatures folded to ASCII ("folded": Tesseract reads groff's
  hyphen-minus as an em dash, which a search tokenizer treats alike). Seconds a page,
  and the same pages once with Tesseract's own OpenMP threads (its default) for the
  comparison behind OMP_THREAD_LIMIT=1.
- DOCX with a table: python-docx writes a page (a heading, paragraphs of the bundled
  corpus, a 12-row table); pandoc turns it into groff ms, groff (tbl) into a PDF;
  rasterised and scored as above.
- Recall: `--queries` test queries (seed 0), their relevant pages and `--distractors`
  other pages, all of at most `--max-pages` PDF pages (the cost of OCR on two cores).
  Each page's PDF is read two ways: as a text PDF (ragmini's extraction) and as an
  image-only copy (every page rasterised at `--dpi` and wrapped back into a
  PDF by Pillow), read by ragmini's loader with `--ocr auto` (the worker pool). Two
  BEIR folders with the same ids, titles, queries and qrels, evaluated with bm25 and
  sbert; target: recall@10 within 0.03.

Writes bench/ocr_results.json.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from bench.common import MANPAGES, REPO, Target, write_results

_FOLD = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2010": "-", "\u2011": "-",
                       "\u2212": "-", "\u00ad": "", "\u2018": "'", "\u2019": "'",
                       "\u201c": '"', "\u201d": '"', "\u00b4": "'", "`": "'"})


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def normalise(text: str, fold: bool = False) -> str:
    text = unicodedata.normalize("NFKC" if fold else "NFC", text)
    if fold:
        text = text.translate(_FOLD)
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b)


def page_png(pdf_path: Path, page: int, dpi: int) -> tuple[bytes, str]:
    """(PNG of page `page` at `dpi`, the page's text layer)."""
    import pypdfium2 as pdfium

    from ingest.ocr import render_page

    doc = pdfium.PdfDocument(str(pdf_path))
    try:
        p = doc[page]
        text = p.get_textpage().get_text_range()
        return render_page(p, dpi), text
    finally:
        doc.close()


def score_pages(pages: list[tuple[str, Path]], dpis=(150, 300), omp_check: int = 3) -> dict:
    """CER and seconds a page for (label, pdf) first pages at each dpi."""
    import os

    from ingest.ocr import ocr_image

    out: dict = {}
    for dpi in dpis:
        dist_raw = dist_fold = n_raw = n_fold = 0
        per_page, seconds = [], []
        for label, pdf in pages:
            png, truth = page_png(pdf, 0, dpi)
            started = time.perf_counter()
            found = ocr_image(png, dpi=dpi)
            seconds.append(time.perf_counter() - started)
            t_raw, f_raw = normalise(truth), normalise(found)
            t_fold, f_fold = normalise(truth, True), normalise(found, True)
            d_raw, d_fold = edit_distance(f_raw, t_raw), edit_distance(f_fold, t_fold)
            dist_raw, n_raw = dist_raw + d_raw, n_raw + len(t_raw)
            dist_fold, n_fold = dist_fold + d_fold, n_fold + len(t_fold)
            per_page.append({"page": label, "chars": len(t_raw),
                             "cer_raw": round(d_raw / max(1, len(t_raw)) * 100, 3),
                             "cer_folded": round(d_fold / max(1, len(t_fold)) * 100, 3),
                             "token_f1": round(_token_f1(found, truth), 4),
                             "seconds": round(seconds[-1], 2)})
        out[f"{dpi}dpi"] = {
            "pages": len(pages), "chars": n_raw,
            "cer_raw_percent": round(dist_raw / max(1, n_raw) * 100, 3),
            "cer_folded_percent": round(dist_fold / max(1, n_fold) * 100, 3),
            "cer_raw_median_page_percent": round(statistics.median(
                p["cer_raw"] for p in per_page), 3),
            "token_f1_mean": round(statistics.fmean(p["token_f1"] for p in per_page), 4),
            "seconds_per_page_median": round(statistics.median(seconds), 2),
            "seconds_per_page_mean": round(statistics.fmean(seconds), 2),
            "per_page": per_page}
        log(f"{dpi} dpi:", {k: v for k, v in out[f"{dpi}dpi"].items() if k != "per_page"})
    if omp_check:
        # Tesseract's default: its own OpenMP threads (no OMP_THREAD_LIMIT)
        exe = shutil.which("tesseract")
        env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
        one, default = [], []
        for _, pdf in pages[:omp_check]:
            png, _ = page_png(pdf, 0, 300)
            for store, extra in ((default, env), (one, {**env, "OMP_THREAD_LIMIT": "1"})):
                started = time.perf_counter()
                subprocess.run([exe, "stdin", "stdout", "--dpi", "300", "-l", "eng"], input=png,
                               capture_output=True, env=extra, check=True)
                store.append(time.perf_counter() - started)
        out["openmp_300dpi"] = {"pages": len(one),
                                "seconds_per_page_one_thread": round(statistics.median(one), 2),
                                "seconds_per_page_openmp_default": round(
                                    statistics.median(default), 2)}
        log("OpenMP:", out["openmp_300dpi"])
    return out


def docx_table_pdf(work: Path) -> Path:
    """A DOCX page with a heading, paragraphs and a 12-row table, rendered to PDF
    through pandoc (DOCX -> groff ms) and groff (tbl)."""
    import docx

    texts = [p.read_text() for p in sorted((REPO / "corpus" / "docs").glob("*.md"))]
    words = [w for t in texts for w in re.sub(r"[#*`_\[\]()>|]", " ", t).split()]
    d = docx.Document()
    d.add_heading("Quarterly inventory and retrieval notes", 1)
    d.add_paragraph(" ".join(words[40:160]))
    table = d.add_table(rows=12, cols=4)
    rng = random.Random(3)
    items = ["Copper wire", "Steel bolts", "Rubber seals", "Brass hinges", "Oak panels",
             "Glass jars", "Paper rolls", "Cotton rope", "Zinc plates", "Nylon straps",
             "Clay bricks"]
    for i, row in enumerate(table.rows):
        cells = ("Item", "Aisle", "Units", "Checked by") if i == 0 else (
            items[i - 1], f"Aisle {rng.randrange(1, 20)}", str(rng.randrange(10, 5000)),
            rng.choice(["Ana Ruiz", "Tom Okafor", "Li Wei", "Sara Berg"]))
        for cell, value in zip(row.cells, cells):
            cell.text = value
    d.add_paragraph(" ".join(words[400:520]))
    work.mkdir(parents=True, exist_ok=True)
    d.save(work / "table.docx")
    subprocess.run(["pandoc", "-f", "docx", "-t", "ms", "-o", str(work / "table.ms"),
                    str(work / "table.docx")], check=True, capture_output=True)
    pdf = subprocess.run(["groff", "-ms", "-t", "-k", "-Tpdf", str(work / "table.ms")],
                         check=True, capture_output=True).stdout
    (work / "table.pdf").write_bytes(pdf)
    return work / "table.pdf"


def image_only(pdf: Path, out: Path, dpi: int) -> int:
    """Every page of `pdf` rasterised at `dpi` and wrapped back into a PDF; its pages."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        images = [doc[i].render(scale=dpi / 72, grayscale=True).to_pil().copy()
                  for i in range(len(doc))]
    finally:
        doc.close()
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:],
                   resolution=dpi)
    out.write_bytes(buffer.getvalue())
    return len(images)


def beir_folder(out: Path, rows: dict[str, dict], texts: dict[str, str], data: Path,
                queries: list[str], qrels: dict[str, dict[str, int]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w") as handle:
        for page in sorted(texts):
            handle.write(json.dumps({**rows[page], "text": texts[page]}) + "\n")
    shutil.copy(data / "queries.jsonl", out / "queries.jsonl")
    (out / "qrels").mkdir(exist_ok=True)
    with open(out / "qrels" / "test.tsv", "w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for q in queries:
            for doc, grade in qrels[q].items():
                handle.write(f"{q}\t{doc}\t{grade}\n")
    return out


def recall(args, data: Path, found: dict[str, Path], corpus: dict[str, dict]) -> dict:
    from bench.extract import WORK, render_all
    from eval.beir import load_beir
    from ingest.documents import extract
    from ingest.load import load_paths
    from ingest.ocr import OcrOptions

    import pypdfium2 as pdfium

    rng = random.Random(0)
    test = load_beir(data, "test")
    qrels = test.qrels
    # Man pages of at most --max-pages PDF pages (a 58-page one would cost a quarter of
    # the run), found by rendering candidates in a seeded random order.
    pdfs: dict[str, Path] = {}

    def short(page: str) -> bool:
        if page not in pdfs:
            made = render_all({page: found[page]}, WORK / "rendered", (), set())["pdf"]
            if page not in made:
                return False
            pdfs[page] = made[page]
        doc = pdfium.PdfDocument(str(pdfs[page]))
        try:
            return len(doc) <= args.max_pages
        finally:
            doc.close()

    candidates = sorted(q for q in qrels if all(d in found for d in qrels[q]))
    rng.shuffle(candidates)
    chosen_queries, tried = [], 0
    for q in candidates:
        if len(chosen_queries) == args.queries:
            break
        tried += 1
        if all(short(d) for d in qrels[q]):
            chosen_queries.append(q)
    chosen_queries.sort()
    relevant = {d for q in chosen_queries for d in qrels[q]}
    others = sorted(set(found) - relevant)
    rng.shuffle(others)
    distractors = []
    for page in others:
        if len(distractors) == args.distractors:
            break
        if short(page):
            distractors.append(page)
    pages = sorted(relevant | set(distractors))
    log(f"recall: {len(chosen_queries)} test queries (of {tried} tried) whose pages have at "
        f"most {args.max_pages} PDF pages, {len(pages)} man pages")
    text = {}
    for page in pages:
        text[page] = extract(".pdf", pdfs[page].read_bytes()).text
    scans = WORK / f"scanned-{args.dpi}dpi"
    scans.mkdir(parents=True, exist_ok=True)
    n_pages = 0
    for page in pages:
        target = scans / f"{page}.pdf"
        if not target.exists():
            image_only(pdfs[page], target, args.dpi)
        doc = pdfium.PdfDocument(str(target))
        n_pages += len(doc)
        doc.close()
    # OCR'd text is kept (WORK/ocr-text-DPI.json, by page and engine) so that a rerun
    # of the evaluation does not read 300 pages again
    cache_path = WORK / f"ocr-text-{args.dpi}dpi.json"
    from ingest.ocr import engine_version

    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if cache.get("engine") != engine_version():
        cache = {"engine": engine_version(), "pages": {}, "seconds": {}}
    todo = [p for p in pages if p not in cache["pages"]]
    skipped = []
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        tmp = Path(tmp)
        if todo:
            (tmp / "scans").mkdir()
            for page in todo:
                (tmp / "scans" / f"{page}.pdf").symlink_to(scans / f"{page}.pdf")
            log(f"OCR of {len(todo)} man pages at {args.dpi} dpi")
            started = time.perf_counter()
            loaded = load_paths([tmp / "scans"], progress=True, follow_links=True,
                                ocr=OcrOptions(mode="auto"), extract_timeout=600)
            seconds = time.perf_counter() - started
            skipped = [s.path.rsplit("/", 1)[-1] + ": " + s.reason for s in loaded.skipped]
            for d in loaded.documents:
                cache["pages"][d.doc_id[:-len(".pdf")]] = d.text
            for page in todo:  # a page OCR could not read is scored empty, as a user gets it
                cache["pages"].setdefault(page, "(no text)")
            cache["seconds"][f"{len(todo)} man pages"] = round(seconds, 1)
            cache_path.write_text(json.dumps(cache))
            log(f"OCR done in {seconds:.0f} s; skipped {len(skipped)}")
        ocr_text = {p: cache["pages"][p] for p in pages}
        arms = {"text PDF": text, f"image-only PDF, OCR at {args.dpi} dpi": ocr_text}
        metrics = {}
        for label, texts in arms.items():
            folder = beir_folder(tmp / re.sub(r"\W+", "-", label), corpus, texts, data,
                                 chosen_queries, qrels)
            log("eval", label)
            metrics[label] = _scores(folder, ["bm25", "sbert"])
            log(label, metrics[label])
        # Harder: the same queries over all 2,004 pages, the sampled ones as text PDF or
        # as OCR text, the others as the benchmark's text (the same in both); bm25 only
        # (sbert would embed 28k chunks twice)
        full = {}
        for label, texts in arms.items():
            everything = {page: row["text"] for page, row in corpus.items()}
            everything.update(texts)
            folder = beir_folder(tmp / ("full-" + re.sub(r"\W+", "-", label)), corpus,
                                 everything, data, chosen_queries, qrels)
            log("eval, full corpus:", label)
            full[label] = _scores(folder, ["bm25"])
            log(label, full[label])
    token_f1 = statistics.fmean(_token_f1(ocr_text[p], text[p]) for p in pages)
    return {"queries": len(chosen_queries), "queries_tried": tried,
            "test_queries": len(qrels), "max_pdf_pages": args.max_pages,
            "man_pages": len(pages), "pdf_pages": n_pages,
            "dpi": args.dpi, "ocr_seconds": cache["seconds"],
            "ocr_failed_files": skipped,
            "token_f1_ocr_vs_text_mean": round(token_f1, 4),
            "metrics": metrics, "full_corpus_metrics": full}


def _scores(folder: Path, methods: list[str]) -> dict:
    from eval.runs import evaluate_dataset

    run = evaluate_dataset(folder, split="test", methods=methods, progress=False,
                           resamples=1000)[0]
    return {m: {k: round(r.metrics[k], 4) for k in ("recall@1", "recall@10", "mrr@10",
                                                    "ndcg@10")}
            for m, r in run.result.methods.items()}


def _token_f1(found: str, truth: str) -> float:
    from bench.extract import token_f1

    return token_f1(found, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cer-pages", type=int, default=12)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--distractors", type=int, default=100)
    parser.add_argument("--dpi", type=int, default=200, help="scan resolution of the copy")
    parser.add_argument("--max-pages", type=int, default=4,
                        help="recall sample: man pages of at most this many PDF pages")
    parser.add_argument("--no-cer", action="store_true", help="keep the CER figures of the "
                        "last results file (recall only)")
    parser.add_argument("--no-recall", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from bench.extract import WORK, render_all, sources
    from ingest.ocr import engine_version, unavailable

    if unavailable():
        raise SystemExit(f"OCR unavailable: {unavailable()}")
    data = MANPAGES  # `make manpages` builds it
    corpus = {}
    for line in open(data / "corpus.jsonl"):
        row = json.loads(line)
        corpus[row["_id"]] = row
    log(f"{len(corpus)} pages in {data}; finding their sources")
    found = sources(corpus)
    import os

    results: dict = {"engine": engine_version(), "data": str(data),
                     "load_average_at_start": [round(x, 1) for x in os.getloadavg()]}

    out = args.out or REPO / "bench" / "ocr_results.json"
    before = json.loads(out.read_text()) if out.exists() else {}  # the last run, for --no-*
    if args.no_cer:
        last = json.loads(out.read_text())
        results.update({k: last[k] for k in ("manpages_cer", "docx_table_cer")})
    else:
        rng = random.Random(1)
        cer_sample = sorted(rng.sample(sorted(found), args.cer_pages))
        pdfs = render_all({p: found[p] for p in cer_sample}, WORK / "rendered", (),
                          set())["pdf"]
        log(f"CER on the first page of {len(pdfs)} man pages")
        results["manpages_cer"] = score_pages(sorted(pdfs.items()))
        with tempfile.TemporaryDirectory(prefix="bench-ocr-docx-") as tmp:
            table = docx_table_pdf(Path(tmp))
            log("CER on a DOCX page with a table")
            results["docx_table_cer"] = score_pages([("docx-table", table)], omp_check=0)
        write_results("ocr", results, out=out)  # kept if the recall part is stopped
    if not args.no_recall:
        results["recall"] = recall(args, data, found, corpus)
    elif "recall" in before:
        results["recall"] = before["recall"]  # kept from the last run
    cer = results["manpages_cer"]
    targets = [
        Target("man pages CER at 300 dpi (raw)", cer["300dpi"]["cer_raw_percent"], 1.0, "<=", "%"),
        Target("man pages CER at 150 dpi (raw)", cer["150dpi"]["cer_raw_percent"], 1.5, "<=", "%"),
        Target("DOCX table page CER at 300 dpi (raw)",
               results["docx_table_cer"]["300dpi"]["cer_raw_percent"], 1.0, "<=", "%"),
        Target("seconds a page at 300 dpi (one Tesseract, median)",
               cer["300dpi"]["seconds_per_page_median"], 7.0, "<=", " s"),
    ]
    if "recall" in results:
        for key, methods, where in (("metrics", ("bm25", "sbert"), "the sample"),
                                    ("full_corpus_metrics", ("bm25",), "all 2,004 pages")):
            arms = list(results["recall"][key].values())
            for method in methods:
                delta = round(arms[0][method]["recall@10"] - arms[1][method]["recall@10"], 4)
                results["recall"][f"{method}_recall@10_drop ({where})"] = delta
                targets.append(Target(f"{method} recall@10 drop, image-only vs text PDFs "
                                      f"({where})", delta, 0.03, "<="))
    results["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    path = write_results("ocr", results, targets, out=out)
    print(json.dumps({k: v for k, v in results.items()}, indent=1)[:4000])
    log("wrote", path)


if __name__ == "__main__":
    main()
