"""Fill the figures of README.md, docs/*.md and bench/README.md from the benchmarks' JSON.

    python -m bench.docs            # rewrite every marked figure and table in place
    python -m bench.docs --check    # exit 1 when a page shows other figures than its JSON

A page marks a figure with the JSON value it shows, and a table with the
renderer that builds it:

    sbert encodes <!-- bench encoders_results.json throughput.onnx-int8.chunks_per_s .1f -->57.5<!-- /bench --> chunks/s

    <!-- bench-table encoders-speed -->
    | ... the table ... |
    <!-- /bench-table -->

A figure marker names FILE PATH [FORMAT]:
- FILE: a file in bench/ (`results.json`), or a path from the repository root
  (`docs/manpages-test/metrics.json`);
- PATH: keys joined by dots, a list index as `[0]`, a key holding dots, spaces or
  brackets in quotes: `sets["manpages/dev"].settings["convex zscore 0.50/0.50"].margin`;
- FORMAT: a Python format spec (`.2f`, `,.0f`, `+.3f`, `.1%`); without one, floats
  print with `g` and anything else as it is. A string holding newlines (a
  Markdown table a benchmark wrote) is put on lines of its own.

A table marker names a renderer of TABLES below and its arguments. Errors (a
missing file, a path the JSON lacks, an unclosed marker) name the page and line
and exit 2: a page never shows a figure nobody can trace.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/docs.py`: import the repository's packages, not bench/'s files
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import REPO  # noqa: E402

MARKER = re.compile(r"<!-- bench-table (?P<tspec>.*?) -->(?P<tbody>.*?)<!-- /bench-table -->"
                    r"|<!-- bench (?P<vspec>.*?) -->(?P<vbody>.*?)<!-- /bench -->", re.S)
SPEC = re.compile(r'\s*(?P<file>\S+)\s+(?P<path>(?:\["[^"]*"\]|[^\s\[]|\[\d+\])+)'
                  r'(?:\s+(?P<fmt>\S+))?\s*$')
SEGMENT = re.compile(r'\["(?P<quoted>[^"]*)"\]|\[(?P<index>\d+)\]|(?P<bare>[^.\[\]"]+)')


class DocsError(Exception):
    """A marker that cannot be filled: the message names the page and line."""


def pages(root: Path = REPO) -> list[Path]:
    """The pages whose markers this fills: README.md, docs/*.md, bench/README.md."""
    found = [root / "README.md", *sorted((root / "docs").glob("*.md")),
             root / "bench" / "README.md"]
    return [p for p in found if p.is_file()]


# --- reading the JSON -------------------------------------------------------

@dataclass
class Source:
    """The JSON files of one repository checkout, each read once."""

    root: Path

    def __post_init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def load(self, name: str) -> Any:
        if name not in self._cache:
            path = self.root / name if "/" in name else self.root / "bench" / name
            try:
                self._cache[name] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise DocsError(f"{name}: no such file ({path})") from None
            except json.JSONDecodeError as exc:
                raise DocsError(f"{name}: not valid JSON ({exc})") from None
        return self._cache[name]

    def get(self, name: str, path: str) -> Any:
        return lookup(self.load(name), path, name)


def split_path(path: str) -> list[str | int]:
    """`a.b[0]["c.d"]` -> ["a", "b", 0, "c.d"]."""
    out: list[str | int] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "." and out:
            pos += 1
        m = SEGMENT.match(path, pos)
        if not m:
            raise DocsError(f"cannot read the path {path!r} at {path[pos:]!r}")
        if m.group("index") is not None:
            out.append(int(m.group("index")))
        else:
            out.append(m.group("quoted") if m.group("quoted") is not None else m.group("bare"))
        pos = m.end()
    return out


def lookup(data: Any, path: str, name: str = "") -> Any:
    value = data
    for key in split_path(path):
        try:
            if isinstance(value, list) and isinstance(key, str) and key.isdigit():
                key = int(key)
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise DocsError(f"{name} has no {path!r} (stopped at {key!r})") from None
    return value


def fmt(value: Any, spec: str | None) -> str:
    if spec:
        try:
            return format(value, spec)
        except (TypeError, ValueError) as exc:
            raise DocsError(f"cannot format {value!r} with {spec!r} ({exc})") from None
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


# --- tables -----------------------------------------------------------------

def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ci(c: dict, digits: int = 4) -> str:
    lo, hi = c["ci95"]
    return f"{c['delta']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def encoders_speed(src: Source) -> str:
    enc = src.load("encoders_results.json")
    t, cold = enc["throughput"], enc["cold"]

    def rate(kind: str, what: str, digits: int) -> str:
        value = t[kind][f"{what}_per_s"]
        if kind == "torch":
            return f"{value:.{digits}f}"
        return f"{value:.{digits}f} ({t[kind][f'{what}_ratio_to_torch']:.2f}x)"

    def cosine(kind: str, what: str) -> str:
        c = t[kind]["cosine_to_torch"]
        return f"{c[what + '_mean']:.4f} / {c[what + '_min']:.4f}"

    return md_table(["", "torch", "onnx", "onnx-int8"], [
        ["man-page chunks (~200 tokens) encoded per second",
         *(rate(k, "chunks", 1) for k in ("torch", "onnx", "onnx-int8"))],
        ["man-page queries (~8 tokens) encoded per second",
         *(rate(k, "queries", 0) for k in ("torch", "onnx", "onnx-int8"))],
        ["cosine to torch, chunks: mean / min", "1", cosine("onnx", "chunks"),
         cosine("onnx-int8", "chunks")],
        ["cosine to torch, queries: mean / min", "1", cosine("onnx", "queries"),
         cosine("onnx-int8", "queries")],
        ["`ragmini search --method sbert` cold, whole process (s)",
         f"{cold['search_sbert_torch']['s']:.2f}", "", f"{cold['search_sbert_onnx-int8']['s']:.2f}"],
        ["its peak RSS (MiB)", f"{cold['search_sbert_torch']['peak_rss_mb']:.0f}", "",
         f"{cold['search_sbert_onnx-int8']['peak_rss_mb']:.0f}"],
        ["`ragmini ingest corpus/docs --methods sbert,glove`, whole process (s)",
         f"{enc['bundled_ingest_s']['torch']:.2f}", "", f"{enc['bundled_ingest_s']['onnx-int8']:.2f}"],
    ])


def encoders_quality(src: Source) -> str:
    enc = src.load("encoders_results.json")
    rows = []
    for label, block in (("man pages, test split", enc["manpages"]["quality"]),
                         ("bundled", enc["bundled"])):
        for c in block["comparisons"]:
            means = block["means"]
            rows.append([f"{label} ({block['n_queries']})", c["metric"],
                         f"{means['torch'][c['metric']]:.4f}", f"{means['onnx-int8'][c['metric']]:.4f}",
                         _ci(c), f"{c['p_value']:.2f}"])
    return md_table(["queries", "metric", "torch", "onnx-int8", "int8 - torch [95% CI]", "p"], rows)


def filters(src: Source) -> str:
    f = src.load("filters_results.json")
    rows = [[f"`{r['filter']}` ({r['kept_share']:.1%})", f"{r['flat_sel_ms']:.2f} ms",
             f"{r['hnsw_sel_ms']:.2f} ms ({r['recall_hnsw_sel']:.3f})",
             f"{r['ragmini_ms']:.2f} ms ({r['recall_ragmini']:.3f})",
             f"{r['ragmini_hnsw_ms']:.2f} ms ({r['recall_ragmini_hnsw']:.3f})"] for r in f["rows"]]
    return md_table(["filter (share of chunks kept)", "flat + selector",
                     "HNSW + selector (recall)", "ragmini on flat (recall)",
                     "ragmini on HNSW (recall)"], rows)


def serve_latency(src: Source) -> str:
    s = src.load("serve_results.json")
    rows = []
    for m in ("glove", "sbert"):
        inp, http, over = s["in_process_ms"][m], s["http_ms"][m], s["http_overhead_p50_ms"][m]
        met = "met" if over < 3 else f"missed by {over - 3:.1f} ms"
        rows.append([m, f"{inp['p50']:.2f} / {inp['p95']:.2f}", f"{http['p50']:.2f} / {http['p95']:.2f}",
                     f"**+{over:.2f} ms** (target < 3: {met})"])
    return md_table(["method", "in-process p50 / p95 (ms)", "HTTP p50 / p95 (ms)",
                     "HTTP overhead at p50"], rows)


LOAD_NAMES = {"search bm25": "search bm25", "search glove": "search glove",
              "search hybrid": "search hybrid", "compare": "compare",
              "ask extractive": "ask (extractive)", "ask lm": "ask (SmolLM2, 24 tokens)"}


def load_table(src: Source) -> str:
    d = src.load("load_results.json")
    rows = []
    for key, label in LOAD_NAMES.items():
        e = d["endpoints"].get(key)
        if e:
            rows.append([label, f"{e['requests']:,}", f"{e['requests_per_s']:.2f}", e["errors"],
                         f"{e['p50_ms']:,.0f}", f"{e['p95_ms']:,.0f}", f"{e['p99_ms']:,.0f}"])
    rows.append(["**all**", f"{d['requests']:,}", f"{d['requests_per_s']:.1f}",
                 f"**{d['errors']}**", "", "", ""])
    return md_table(["endpoint", "requests", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms"], rows)


def extract_formats(src: Source) -> str:
    d = src.load("extract_results.json")
    rows = []
    for reader, r in d["pdf"].items():
        rows.append(["PDF", reader, f"{r['documents']:,}",
                     f"{r['token_f1_mean']:.4f} / {r['token_f1_median']:.4f} / {r['token_f1_min']:.3f}",
                     f"{r['pages_per_s']:.0f} ({r['docs_per_s']:.1f})", r["failures"]])
    readers = {"docx": "ragmini (python-docx)", "epub": "ragmini (ebooklib + lxml)",
               "odt": "ragmini (odfpy)"}
    for fmt_, r in d["other"].items():
        rows.append([fmt_.upper(), readers.get(fmt_, fmt_), f"{r['documents']:,}",
                     f"{r['token_f1_mean']:.4f} / {r['token_f1_median']:.4f} / {r['token_f1_min']:.3f}",
                     f"({r['docs_per_s']:.1f})", r["failures"]])
    return md_table(["format", "reader", "documents", "token F1 mean / median / min",
                     "pages/s (docs/s)", "failures"], rows)


def extract_retrieval(src: Source) -> str:
    d = src.load("extract_results.json")["retrieval"]
    rows = [[corpus, method, f"{m['recall@10']:.4f}", f"{m['mrr@10']:.4f}", f"{m['ndcg@10']:.4f}"]
            for corpus, by_method in d.items() if isinstance(by_method, dict)
            for method, m in by_method.items()]
    return md_table([f"corpus ({d['split']} split)", "method", "recall@10", "MRR@10", "nDCG@10"],
                    rows)


METRIC_LABELS = {"mrr@10": "MRR@10", "ndcg@10": "nDCG@10", "map": "MAP"}


def eval_methods(src: Source, file: str, metrics: str) -> str:
    """A retrieval eval's methods, weakest first by recall@10, the best of each column bold."""
    d = src.load(file)
    cols = metrics.split(",")
    methods = sorted(d["methods"], key=lambda m: (d["methods"][m]["recall@10"],
                                                  d["methods"][m]["mrr@10"]))
    best = {c: max(d["methods"][m][c] for m in methods) for c in cols}

    def cell(m: str, c: str) -> str:
        text = f"{d['methods'][m][c]:.3f}"
        return f"**{text}**" if f"{d['methods'][m][c]:.3f}" == f"{best[c]:.3f}" else text

    return md_table(["method", *(METRIC_LABELS.get(c, c) for c in cols)],
                    [[m, *(cell(m, c) for c in cols)] for m in methods])


HEADLINE = ("recall@10", "mrr@10", "ndcg@10")


def fusion_test(src: Source, *files: str) -> str:
    """The default hybrid against its parts on each test split: recall@10 / MRR@10 / nDCG@10,
    and hybrid minus the better part (by the mean of the three) with its 95% CI; * marks a
    significant difference (Holm-adjusted p < 0.05 and the CI excluding 0)."""
    rows = []
    for file in files:
        d = src.load(file)
        m = d["methods"]

        def three(name: str) -> str:
            return " / ".join(f"{m[name][k]:.3f}" for k in HEADLINE)

        better = max(("bm25", "sbert"), key=lambda n: sum(m[n][k] for k in HEADLINE))
        diffs = []
        for c in d["comparisons"]:
            if {c["a"], c["b"]} == {better, "hybrid"} and c["metric"] in HEADLINE:
                sign = 1 if c["b"] == "hybrid" else -1
                lo, hi = sorted((sign * c["ci95"][0], sign * c["ci95"][1]))
                diffs.append(f"{METRIC_LABELS.get(c['metric'], c['metric'])} "
                             f"{sign * c['delta']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                             + (" *" if c["significant"] else ""))
        rows.append([f"{d['dataset']} ({d['n_queries']})", three("bm25"), three("sbert"),
                     three("hybrid-rrf"), f"**{three('hybrid')}**",
                     f"vs {better}: " + "; ".join(diffs)])
    return md_table(["dataset", "bm25", "sbert", "hybrid-rrf", "hybrid",
                     "hybrid - the better part [95% CI]"], rows)


FUSION_ROWS = (("convex zscore 0.50/0.50", "**convex, z-score, 0.5/0.5 (default)**"),
               ("convex minmax 0.50/0.50", "convex, min-max, 0.5/0.5"),
               ("convex tmm 0.50/0.50", "convex, theoretical min-max, 0.5/0.5"),
               ("rrf 0.50/0.50", "plain RRF (hybrid-rrf)"))


def fusion_settings(src: Source) -> str:
    d = src.load("fusion_results.json")
    sets = ("manpages/dev", "faq/dev", "bundled")
    # Weighted RRF proper: both parts weighted, not the plain (equal) one.
    wrrf = [k for k in d["worst_margin"]
            if k.startswith("rrf") and k != "rrf 0.50/0.50" and "0.00" not in k]
    best_wrrf = max(wrrf, key=lambda k: d["worst_margin"][k]) if wrrf else None
    rows_spec = list(FUSION_ROWS)
    if best_wrrf:
        rows_spec.append((best_wrrf, f"best weighted RRF ({best_wrrf.split()[1]})"))
    rows = []
    for key, label in rows_spec:
        if key not in d["worst_margin"]:
            continue
        margins = [d["sets"][s]["settings"][key]["margin"] for s in sets]
        rows.append([label, *(f"{m:+.3f}" for m in margins), f"{d['worst_margin'][key]:+.3f}"])
    return md_table(["setting", "man pages dev", "FAQ dev", "bundled", "worst"], rows)


def support_auc(src: Source) -> str:
    d = src.load("support_calibration.json")["candidates"]
    rows = [["MiniLM cosine alone", f"{d['cosine']['test_auc']:.3f}"],
            ["lexical overlap alone", f"{d['lexical']['test_auc']:.3f}"],
            ["mean of the two", f"{d['mean_cosine_lexical']['test_auc']:.3f}"],
            ["**logistic: cosine + lexical + missing specifics (used)**",
             f"**{d['logistic_cos_lex_specific']['test_auc']:.3f}**"]]
    return md_table(["score (held-back pairs)", "ROC AUC"], rows)


def abstain_table(src: Source) -> str:
    """Every split: the shipped abstention model beside the top-1 baseline."""
    d = src.load("abstain_calibration.json")
    rows = []
    for key, label in (("faq/dev", "FAQ dev"), ("faq/test", "FAQ test"),
                       ("bundled/dev", "bundled dev"), ("bundled/test", "bundled test")):
        s, m, t = d["sets"][key], d["sets"][key]["model"], d["sets"][key]["top1"]
        rows.append([label, f"{s['questions']} ({s['unanswerable']})",
                     f"{t['auc']:.3f} / {m['auc']:.3f}",
                     f"{t['balanced_accuracy']:.3f} / **{m['balanced_accuracy']:.3f}**",
                     f"{t['answerable_abstained']:.1%} / {m['answerable_abstained']:.1%}",
                     f"{m['abstain_precision']:.3f} / {m['abstain_recall']:.3f}"])
    return md_table(["split", "questions (unanswerable)", "AUC top-1 / model",
                     "balanced accuracy top-1 / model", "answerable abstained top-1 / model",
                     "abstain precision / recall (model)"], rows)


ANSWER_COLS = (("abstain_balanced_accuracy", "abstain bal. acc."),
               ("citation_validity", "citation validity"), ("citation_hit", "citation hit"),
               ("support_rate", "support rate"), ("answer_similarity", "similarity"),
               ("token_f1", "token F1"))


def answers(src: Source, file: str) -> str:
    """An `eval answers` run: one row per generator, then its paired comparisons."""
    d = src.load(file)
    rows = [[g, *(f"{m[c]:.3f}" for c, _ in ANSWER_COLS), f"{m['latency_ms_p50'] / 1000:.1f}"]
            for g, m in d["generators"].items()]
    table = md_table(["generator", *(label for _, label in ANSWER_COLS), "p50 s"], rows)
    lines = [f"- {c['b']} − {c['a']} on {c['metric']}: {_ci(c, 3)}, Holm p {c['p_holm']:.4f}, "
             f"{'significant' if c['significant'] else 'not significant'}"
             for c in d["comparisons"]]
    return table + ("\n\n" + "\n".join(lines) if lines else "")


def backends_stores(src: Source) -> str:
    d = src.load("backends_results.json")
    names = {("faiss", "flat"): "FAISS flat", ("faiss", "hnsw"): "FAISS HNSW",
             ("milvus", "flat"): "Milvus Lite FLAT", ("milvus", "hnsw"): "Milvus Lite HNSW"}
    filters_ = [k for k in d["vector_stores"][0] if k.startswith("source=")]
    rows = []
    for r in d["vector_stores"]:
        update = (f"{r['update_1pct_s']:g} (rebuild)" if r["backend"] == "faiss"
                  else f"{r['update_1pct_s']:g} ({r['update_chunks']} chunks written)")
        rows.append([names.get((r["backend"], r["index"]), f"{r['backend']} {r['index']}"),
                     f"{r['build_s']:.2f}", update,
                     f"{r['none']['p50_ms']:.2f} / {r['none']['p95_ms']:.2f}",
                     *(f"{r[f]['p50_ms']:.2f} / {r[f]['p95_ms']:.2f}" for f in filters_),
                     " / ".join(f"{r[k]['recall_at_10_vs_faiss_flat']:.4g}" for k in ("none", *filters_))])
    first = d["vector_stores"][0]
    return md_table(["store", "build s", "1% of documents changed: update s",
                     "p50 / p95 ms, no filter",
                     *(f"`{f}` ({first[f]['kept_share']:.1%})" for f in filters_),
                     "recall@10 vs FAISS flat (none / " +
                     " / ".join(f"{first[f]['kept_share']:.1%}" for f in filters_) + ")"], rows)


def backends_ray(src: Source) -> str:
    d = src.load("backends_results.json")
    rows = [[r["corpus"], r["methods"], f"{r['chunks']:,}", f"{r['plain_s']:g}", f"{r['ray_s']:g}",
             f"{r['ratio']:.2f}x"] for r in d["ray"]]
    return md_table(["corpus", "methods", "chunks", "plain s", "`--engine ray` s", "ratio"], rows)


TABLES: dict[str, Callable[..., str]] = {
    "encoders-speed": encoders_speed,
    "encoders-quality": encoders_quality,
    "filters": filters,
    "serve-latency": serve_latency,
    "load": load_table,
    "extract-formats": extract_formats,
    "extract-retrieval": extract_retrieval,
    "eval-methods": eval_methods,
    "fusion-settings": fusion_settings,
    "fusion-test": fusion_test,
    "support-auc": support_auc,
    "abstain": abstain_table,
    "answers": answers,
    "backends-stores": backends_stores,
    "backends-ray": backends_ray,
}


# --- filling pages ----------------------------------------------------------

@dataclass(frozen=True)
class Change:
    page: str
    line: int
    marker: str
    shown: str
    wanted: str


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _block(text: str) -> str:
    """Multi-line content sits on lines of its own, a blank line either side (so a
    Markdown table between two comments is still a table)."""
    return f"\n\n{text.strip()}\n\n" if "\n" in text else text


FENCE = re.compile(r"^ {0,3}(```|~~~)")


def fenced(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the fenced code blocks of a Markdown text."""
    spans, start, pos = [], None, 0
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            if start is None:
                start = pos
            else:
                spans.append((start, pos + len(line)))
                start = None
        pos += len(line)
    if start is not None:
        spans.append((start, pos))
    return spans


def fill(text: str, src: Source, page: str = "") -> tuple[str, list[Change]]:
    """The page with every marker filled from the JSON, and what changed. Markers inside
    fenced code blocks are examples, and stay as written."""
    changes: list[Change] = []
    code = fenced(text)

    def render(m: re.Match) -> str:
        if any(a <= m.start() < b for a, b in code):
            return m.group(0)
        at = f"{page}:{_line(text, m.start())}"
        is_table = m.group("tspec") is not None
        spec, body = (m.group("tspec"), m.group("tbody")) if is_table else \
            (m.group("vspec"), m.group("vbody"))
        if "<!-- bench" in body:
            raise DocsError(f"{at}: a marker without its closing comment before the next "
                            "marker (figures inside a table marker are not filled)")
        try:
            wanted = _block(_table(spec, src) + "\n") if is_table else _value(spec, src)
        except DocsError as exc:
            raise DocsError(f"{at}: {exc}") from None
        if wanted != body:
            changes.append(Change(page, _line(text, m.start()), spec, body, wanted))
        close = "<!-- /bench-table -->" if is_table else "<!-- /bench -->"
        return m.group(0)[:m.start(2 if is_table else 4) - m.start()] + wanted + close

    return MARKER.sub(render, text), changes


def _value(spec: str, src: Source) -> str:
    parsed = SPEC.match(spec)
    if not parsed:
        raise DocsError(f"write <!-- bench FILE PATH [FORMAT] -->, not <!-- bench {spec} -->")
    return _block(fmt(src.get(parsed["file"], parsed["path"]), parsed["fmt"]))


def _table(spec: str, src: Source) -> str:
    name, *args = spec.split()
    if name not in TABLES:
        raise DocsError(f"no table renderer {name!r}; there are {', '.join(TABLES)}")
    try:
        return TABLES[name](src, *args)
    except TypeError as exc:  # wrong number of arguments in the marker
        raise DocsError(f"table {name}: {exc}") from None
    except (KeyError, IndexError) as exc:
        raise DocsError(f"table {name}: its JSON lacks {exc}") from None


def run(root: Path = REPO, check: bool = False, files: Sequence[Path] | None = None
        ) -> list[Change]:
    """Fill (or, with `check`, only compare) every page; the changes found."""
    src = Source(root)
    changes: list[Change] = []
    for path in files or pages(root):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DocsError(f"cannot read {path} ({exc.strerror})") from None
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        new, found = fill(text, src, name)
        changes += found
        if found and not check:
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, path)
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a page shows other figures than its JSON")
    parser.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", type=Path,
                        help="pages to fill (default: README.md, docs/*.md, bench/README.md)")
    args = parser.parse_args(argv)
    try:
        changes = run(args.root, args.check, [p.resolve() for p in args.files] or None)
    except DocsError as exc:
        print(f"bench.docs: {exc}", file=sys.stderr)
        return 2
    for c in changes:
        shown = c.shown.strip().replace("\n", " ")
        wanted = c.wanted.strip().replace("\n", " ")
        short = (lambda s: s if len(s) <= 60 else s[:57] + "...")
        print(f"{c.page}:{c.line}: {c.marker.split()[0]} {' '.join(c.marker.split()[1:2])}: "
              f"{short(shown)!r} -> {short(wanted)!r}")
    if args.check:
        if changes:
            print(f"{len(changes)} figure(s) out of date; run `python -m bench.docs`",
                  file=sys.stderr)
        return 1 if changes else 0
    print(f"{len(changes)} figure(s) updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
