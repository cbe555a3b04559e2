"""Ingest speed: load + clean + chunk against the code before issue 31, on the same
machine in the same run; per-stage times; HTML extraction cost per MB; the chunk
length and overlap distributions; and man-page recall@10 with both chunkers.

    python -m bench.ingest [--doc /usr/share/doc] [--manpages data/manpages]
        [--baseline COMMIT] [--skip-doc] [--split test]

The baseline is the commit before the change (BASELINE), extracted with
`git archive` into a temporary folder; each side runs `bench/ingest_driver.py`
in a subprocess with its own tree on PYTHONPATH. Compared on the same files:
the baseline reads no compressed file, so the new code is given the baseline's
list of files; the folder as the new code reads it (compressed files too) is
measured separately, through `ingest_and_index`, which also gives the
per-stage table. Writes bench/ingest_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.common import REPO, Target, targets_table, temp_dir, write_results

BASELINE = "f9e628f"  # main before issue 31: langchain splitter, BeautifulSoup HTML path
DRIVER = REPO / "bench" / "ingest_driver.py"
TREE = ("core", "ingest", "retrieval", "eval", "ragmini", "generation")


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def baseline_tree(commit: str, into: Path) -> Path:
    """The packages of `commit`, extracted from git (no checkout is touched)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit,
                              *TREE], check=True, capture_output=True).stdout
    tree = into / f"baseline-{commit}"
    tree.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def drive(tree: Path, *args: str, timeout: float = 3600) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    log("run", tree.name, *args)
    done = subprocess.run([sys.executable, str(DRIVER), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=tree)
    if done.returncode:
        raise SystemExit(f"driver failed ({tree}): {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    log("  ->", {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()
                 if not isinstance(v, dict)})
    return out


def full_ingest(path: Path, store: Path, include_timings: bool = True) -> dict:
    """The new code's whole ingest (bm25), as `ragmini ingest --profile` runs it."""
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    log("ingest_and_index (new)", path)
    started = time.perf_counter()
    with Store.open(store, create=True) as st:
        done = ingest_and_index(st, [path], ["bm25"], progress=False)
    seconds = time.perf_counter() - started
    report = done.report
    t = report.timings
    front = t.get("discover", 0) + t.get("load_wall", 0) + t.get("chunk", 0)
    out = {"seconds": seconds, "documents": done.documents, "chunks": done.chunks,
           "load_clean_chunk_s": front, "chunks_per_s": done.chunks / front if front else None,
           "workers": report.workers, "not_read_total": report.not_read_total,
           "not_read_top": dict(list(report.not_read.items())[:12]),
           "skipped": len(report.skipped), "timings": {k: round(v, 3) for k, v in t.items()},
           "formats": report.to_dict()["formats"], "profile_table": report.profile_table()}
    log("  ->", {k: v for k, v in out.items() if not isinstance(v, (dict, str))})
    return out


def recall(split_dir: Path, split: str, stores: dict[str, Path]) -> dict:
    """bm25 recall@10 (and the headline metrics) in each store, paired tests."""
    from eval.beir import load_beir
    from eval.harness import evaluate_methods
    from eval.metrics import HEADLINE
    from eval.stats import compare
    from ingest.store import Store

    queries = load_beir(split_dir, split)
    per_query, means = {}, {}
    for label, path in stores.items():
        with Store.open(path) as store:
            result = evaluate_methods(store, queries, ["bm25"], ks=(10,), full=True)
        r = result.methods["bm25"]
        per_query[label] = r.per_query
        means[label] = {m: round(r.metrics[m], 4) for m in HEADLINE}
    rows = [c.to_dict() for c in compare(per_query, HEADLINE)]
    return {"split": split, "n_queries": len(next(iter(per_query.values()))),
            "means": means, "comparisons": rows}


def parallel_runs(pages: Path, rounds: int = 2) -> dict:
    """Reading the HTML pages with one process and with one per core, alternated
    (the machine's other load drifts): wall and CPU seconds, medians."""
    import statistics

    cores = len(os.sched_getaffinity(0))
    runs: dict[int, list[dict]] = {1: [], cores: []}
    for _ in range(rounds):
        for workers in runs:
            runs[workers].append(drive(REPO, "load", "--files", str(pages), "--workers",
                                       str(workers)))
    out = {"cores": cores, "rounds": rounds}
    for workers, done in runs.items():
        out[f"workers_{workers}"] = {
            "load_s": statistics.median(d["load_s"] for d in done),
            "cpu_s": statistics.median(d["load_cpu_s"] for d in done),
            "load_average": [round(d["load_average"], 1) for d in done]}
    one, many = out["workers_1"], out[f"workers_{cores}"]
    out["wall_speedup"] = ratio(one["load_s"], many["load_s"])
    out["cpu_overhead"] = ratio(many["cpu_s"], one["cpu_s"])
    return out


def html_files(listing: Path) -> list[str]:
    return [p for p in listing.read_text().splitlines()
            if Path(p).suffix.lower() in (".html", ".htm", ".xhtml")]


def ratio(new: float | None, old: float | None) -> float | None:
    return round(new / old, 2) if new and old else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--doc", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--manpages", type=Path, default=REPO / "data" / "manpages")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--split", default="test")
    parser.add_argument("--skip-doc", action="store_true", help="Only the man pages.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    if not (args.manpages / "corpus.jsonl").is_file():  # as bench/scale.py builds it
        subprocess.run([str(REPO / ".venv" / "bin" / "ragmini"), "datasets", "build",
                        "manpages", "--out", str(args.manpages), "--no-progress"], check=True)
    results: dict = {"baseline": args.baseline}
    targets: list[Target] = []
    with temp_dir("ragmini-bench-ingest-") as tmp:
        base = baseline_tree(args.baseline, tmp)

        # -- the man pages: one BEIR corpus.jsonl, no HTML -----------------------
        corpus = args.manpages / "corpus.jsonl"
        old = drive(base, "load", str(corpus), "--stats")
        new = drive(REPO, "load", str(corpus), "--stats")
        old_idx = drive(base, "index", str(corpus), str(tmp / "man-old"))
        new_full = full_ingest(corpus, tmp / "man-new")
        results["manpages"] = {
            "baseline": old, "new": new, "speedup": ratio(new["chunks_per_s"],
                                                          old["chunks_per_s"]),
            "baseline_ingest_bm25": old_idx, "new_ingest_bm25": new_full,
            "recall": recall(args.manpages, args.split,
                             {"baseline": tmp / "man-old", "new": tmp / "man-new"})}
        man = results["manpages"]
        targets.append(Target("man pages: load+clean+chunk speedup", man["speedup"], 10, ">=",
                              "x"))
        r10 = next(c for c in man["recall"]["comparisons"] if c["metric"] == "recall@10")
        targets.append(Target("man pages: recall@10 change not significant (p)",
                              round(r10["p_value"], 4), 0.05, ">="))
        targets.append(Target("chunks over 200 tokens or miscounted (new)",
                              new["stats"]["over_200"] + new["stats"]["miscounted"]
                              + new["stats"]["span_mismatch"], 0, "<="))

        # -- a real documentation folder: HTML, Markdown, text, compressed ---------
        if not args.skip_doc and args.doc.is_dir():
            listing = tmp / "baseline-files.txt"
            old = drive(base, "load", str(args.doc), "--stats", "--list-files", str(listing))
            new = drive(REPO, "load", "--files", str(listing), "--stats")
            pages = tmp / "html.txt"
            pages.write_text("\n".join(html_files(listing)) + "\n")
            parallel = parallel_runs(pages)
            html_old = drive(base, "html", str(pages))
            html_new = drive(REPO, "html", str(pages))
            same = sum(html_old["digests"][p] == d for p, d in html_new["digests"].items())
            full = full_ingest(args.doc, tmp / "doc-new")
            results["doc"] = {
                "path": str(args.doc), "baseline": old, "new_same_files": new,
                "speedup": ratio(new["chunks_per_s"], old["chunks_per_s"]),
                "parallel": parallel,
                "html": {"pages": len(html_new["digests"]), "mb": round(html_new["mb"], 2),
                         "identical_text": same,
                         "baseline_s_per_mb": round(html_old["seconds"] / html_old["mb"], 3),
                         "new_s_per_mb": round(html_new["seconds"] / html_new["mb"], 3)},
                "new_everything": full}
            doc = results["doc"]
            targets += [
                Target("doc folder: load+clean+chunk speedup (same files)", doc["speedup"], 10,
                       ">=", "x"),
                Target("HTML extraction s/MB (new)", doc["html"]["new_s_per_mb"],
                       doc["html"]["baseline_s_per_mb"], "<=", " s/MB"),
                Target("HTML pages whose text changed", doc["html"]["pages"]
                       - doc["html"]["identical_text"], 0.05 * doc["html"]["pages"], "<="),
                Target("chunks over 200 tokens or miscounted (new, doc folder)",
                       new["stats"]["over_200"] + new["stats"]["miscounted"]
                       + new["stats"]["span_mismatch"], 0, "<="),
            ]
    path = write_results("ingest", results, targets, out=args.out)
    print(targets_table(targets))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
