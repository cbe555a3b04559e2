"""One side of `bench/ingest.py`: load + clean + chunk a folder with the code on
PYTHONPATH (this checkout, or the baseline commit's tree), and print a JSON line.

Run as a script in a subprocess so that each side pays its own imports and
nothing of one side's caches helps the other; it uses only functions both sides
have (`load_paths`, `split_documents`, `ingest_and_index`, `html_main_text`).

    python bench/ingest_driver.py load PATH [--workers N] [--files LIST]
    python bench/ingest_driver.py index CORPUS STORE      (bm25, for recall)
    python bench/ingest_driver.py html LIST                (HTML extraction cost)
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
import time
import warnings
from pathlib import Path

# Run as a script, its folder (bench/, which holds ingest.py) would come first on
# sys.path and hide the `ingest` package: take it off.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
for _key, _value in (("HF_HUB_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                     ("TRANSFORMERS_VERBOSITY", "error")):
    os.environ.setdefault(_key, _value)
warnings.filterwarnings("ignore")  # BeautifulSoup's XML-as-HTML warnings, per file


def _load(paths: list[Path], workers: int | None) -> tuple[object, float]:
    from ingest.load import load_paths

    kwargs = {}
    if "workers" in inspect.signature(load_paths).parameters:
        kwargs["workers"] = workers
    started = time.perf_counter()
    loaded = load_paths(paths, **kwargs)
    return loaded, time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU time of this process and of the child processes it has waited for (the
    reading processes, the extractor)."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def cmd_load(args) -> dict:
    from ingest.chunk import ChunkConfig
    from ingest.pipeline import split_documents

    paths = ([Path(p) for p in Path(args.files).read_text().splitlines() if p]
             if args.files else [Path(args.path)])
    loaded, load_s = _load(paths, args.workers)
    load_cpu_s = cpu_seconds()
    documents = loaded.documents
    started = time.perf_counter()
    chunks = list(split_documents(documents, ChunkConfig(), False))
    chunk_s = time.perf_counter() - started
    n_chunks = sum(map(len, chunks))
    out = {"documents": len(documents), "chunks": n_chunks,
           "chars": sum(len(d.text) for d in documents),
           "skipped": len(loaded.skipped), "load_s": load_s, "chunk_s": chunk_s,
           "load_cpu_s": load_cpu_s, "load_average": os.getloadavg()[0],
           "chunks_per_s": n_chunks / (load_s + chunk_s),
           "timings": dict(getattr(loaded, "timings", {})),
           "workers": getattr(loaded, "workers", 1),
           "not_read_total": sum(getattr(loaded, "not_read", {}).values()),
           "formats": {k: dict(v) for k, v in getattr(loaded, "formats", {}).items()}}
    if args.stats:
        out["stats"] = chunk_stats(documents, chunks)
    if args.list_files:  # the files this side read, for the other side's same-files run
        seen = sorted({d.source.split("#", 1)[0] for d in documents})
        Path(args.list_files).write_text("\n".join(seen) + "\n")
    return out


def chunk_stats(documents, chunks) -> dict:
    """Chunk lengths and the tokens neighbours share, counted by the tokenizer
    itself (one batched call over all texts), and how many chunks are over budget
    or miscounted."""
    from tokenizers import Tokenizer

    from core.models import minilm_dir

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    texts, shared = [], []
    for doc, cs in zip(documents, chunks):
        texts.extend(c.text for c in cs)
        for a, b in zip(cs, cs[1:]):
            shared.append(doc.text[b.start:a.end] if b.start < a.end else "")
    real = [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
    claimed = [c.n_tokens for cs in chunks for c in cs]
    overlap = [len(e.ids) for e in tok.encode_batch(shared, add_special_tokens=False)]
    return {"tokens": distribution(real, 20), "overlap": distribution(overlap, 5),
            "miscounted": sum(a != b for a, b in zip(real, claimed)),
            "over_200": sum(n > 200 for n in real),
            "span_mismatch": sum(doc.text[c.start:c.end] != c.text
                                 for doc, cs in zip(documents, chunks) for c in cs)}


def distribution(values: list[int], width: int) -> dict:
    """Mean, percentiles and a histogram (bins of `width`) of token counts."""
    import statistics

    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    bins: dict[int, int] = {}
    for v in values:
        bins[v // width * width] = bins.get(v // width * width, 0) + 1
    return {"n": len(values), "mean": round(statistics.fmean(values), 2),
            "p5": pct(5), "p25": pct(25), "p50": pct(50), "p75": pct(75), "p95": pct(95),
            "max": ordered[-1], "zero": ordered.count(0),
            "histogram": {str(k): bins[k] for k in sorted(bins)}}


def cmd_index(args) -> dict:
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    started = time.perf_counter()
    with Store.open(Path(args.store), create=True) as store:
        done = ingest_and_index(store, [Path(args.corpus)], ["bm25"], config=ChunkConfig(),
                                progress=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "chunks": done.chunks, "documents": done.documents,
            "timings": dict(getattr(done.report, "timings", {}))}


def cmd_html(args) -> dict:
    """html_main_text over every listed page: seconds, MB, and a digest per page."""
    from ingest.clean import decode_bytes, html_main_text

    seconds, size, digests = 0.0, 0, {}
    for line in Path(args.files).read_text().splitlines():
        raw, _ = decode_bytes(Path(line).read_bytes())
        size += len(raw.encode("utf-8", "surrogatepass"))
        started = time.perf_counter()
        title, text = html_main_text(raw)
        seconds += time.perf_counter() - started
        digests[line] = hashlib.sha256(f"{title}\0{text}".encode("utf-8", "replace")
                                       ).hexdigest()
    return {"seconds": seconds, "mb": size / 2**20, "digests": digests}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("load")
    p.add_argument("path", nargs="?")
    p.add_argument("--files")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--stats", action="store_true")
    p.add_argument("--list-files")
    p = sub.add_parser("index")
    p.add_argument("corpus")
    p.add_argument("store")
    p = sub.add_parser("html")
    p.add_argument("files")
    args = parser.parse_args()
    out = {"load": cmd_load, "index": cmd_index, "html": cmd_html}[args.cmd](args)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
