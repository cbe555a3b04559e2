"""Load test of `ragmini serve` while an ingest writes into the store it serves.

N users (threads, keep-alive httpx clients) send a fixed mix for --duration seconds
over loopback: search by glove, bm25 and their hybrid, compare of the three, ask with
the extractive generator and a small share with the default language model (short
answers). Meanwhile `ragmini ingest data/manpages/corpus.jsonl --methods glove,bm25`
runs into the same store; the load goes on until the ingest has ended, and --tail
seconds more so the new indexes answer too (at most --max-duration seconds).

Reported (bench/load_results.json, and a Markdown table with --markdown): requests/s
and p50/p95/p99 per endpoint, errors (target 0), the server's RSS each second (target:
no growth after warm-up, but for what a bigger store needs), and whether every
search and compare answer came from one store generation. "One generation" is
checked from outside, from each body's `generation` (the generation the method's
index was built from; for a fusion, the older of its two):
- every hit's chunk was live at that generation and its text is the stored text
  (read from the store's SQLite file afterwards);
- the same query, method and k at the same generation got the same hits, every time;
- one user never sees a method's generation go backwards;
- a glove answer is a full page of k hits (no row missing under it).

    python -m bench.load [--duration 120] [--users 16] [--no-ingest]
        [--store DIR] [--ingest data/manpages/corpus.jsonl] [--lm-share 0.002] [--no-ask]
        [--out bench/load_results.json] [--markdown FILE]

Exit status 1 on any error, server traceback, or a plain method's answer that was not
one generation's (a fusion's is reported, not failed: see load_results.json).

Without --store, a fresh store of the bundled corpus (glove, bm25) in a temporary
folder is served and deleted afterwards; with --store, that store is served AND
the ingest writes into it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

if not __package__:  # `python bench/load.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    CORPUS,
    MANPAGES,
    QUERIES,
    REPO,
    percentile,
    write_results,
)

METHODS = ("glove", "bm25", "hybrid:bm25+glove")
FULL_PAGE = ("glove",)  # dense: always k hits when the store has k chunks
K = 5
# (endpoint label, weight): the mix. "ask lm" is --lm-share of all requests.
MIX = (("search glove", 25), ("search bm25", 25), ("search hybrid", 10), ("compare", 20),
       ("ask extractive", 20))


def rss_mib(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load_queries(n_manpages: int) -> list[str]:
    """The bundled labelled queries and some man-page ones (answered once the ingest's
    indexes land): a fixed pool, so queries repeat and answers can be compared."""
    pool = [json.loads(line)["text"] for line in
            QUERIES.read_text().splitlines() if line.strip()]
    manpages = MANPAGES / "queries.jsonl"
    if manpages.is_file():
        lines = [ln for ln in manpages.read_text().splitlines() if ln.strip()]
        pool += [json.loads(ln)["text"] for ln in lines[:n_manpages]]
    return pool


class Recorder:
    """Every request's outcome, and every search answer's generation and hits."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.answers: list[dict] = []  # one per (response, method) with hits

    def request(self, label: str, ms: float, error: str | None = None) -> None:
        with self.lock:
            self.latency[label].append(ms)
            if error:
                self.errors[label].append(error)

    def answer(self, **fields) -> None:
        with self.lock:
            self.answers.append(fields)


def _hits(hits: list[dict]) -> list[tuple]:
    return [(h["chunk_id"], h["doc_id"], round(h["score"], 5),
             hashlib.sha1(h["text"].encode()).hexdigest()[:12]) for h in hits]


def user(i: int, base: str, queries: list[str], stop: list[float], lm_share: float,
         rec: Recorder, mix=MIX) -> None:
    """One user: requests back to back until `stop[0]` (which the ingest may move on)."""
    import httpx

    rng = random.Random(i)
    labels, weights = zip(*mix)
    with httpx.Client(base_url=base, timeout=120) as client:
        while time.monotonic() < stop[0]:
            q = rng.choice(queries)
            label = "ask lm" if rng.random() < lm_share else rng.choices(labels, weights)[0]
            kind = label.split()[0]
            if kind == "search":
                method = {"glove": "glove", "bm25": "bm25", "hybrid": METHODS[2]}[label.split()[1]]
                request = ("GET", "/api/search", {"params": {"q": q, "method": method, "k": K}})
            elif kind == "compare":
                request = ("POST", "/api/compare", {"json": {"q": q, "methods": list(METHODS),
                                                             "k": K}})
            else:
                body = {"question": q, "method": rng.choice(METHODS[:2]), "k": 3}
                if label == "ask lm":
                    body |= {"generator": "distilgpt2", "max_new_tokens": 24}
                else:
                    body["generator"] = "extractive"
                request = ("POST", "/api/ask", {"json": body})
            started = time.perf_counter()
            try:
                response = client.request(request[0], request[1], **request[2])
            except httpx.HTTPError as exc:
                rec.request(label, (time.perf_counter() - started) * 1000, type(exc).__name__)
                continue
            ms = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                rec.request(label, ms, f"{response.status_code} {response.text[:200]}")
                continue
            try:
                record(rec, i, label, kind, q, response.json(),
                       method if kind == "search" else None)
            except (ValueError, KeyError, TypeError) as exc:  # a 200 with a wrong body
                rec.request(label, ms, f"bad body: {exc!r}")
                continue
            rec.request(label, ms)


def record(rec: Recorder, i: int, label: str, kind: str, q: str, body: dict,
           method: str | None) -> None:
    """Keep a search or compare answer's generation and hits for the checks."""
    at = time.monotonic()
    if kind == "search":
        rec.answer(user=i, at=at, method=method, q=q, k=K, generation=body["generation"],
                   hits=_hits(body["hits"]))
    elif kind == "compare":
        for m, r in body["methods"].items():
            if r.get("error"):
                rec.request(f"compare ({m})", 0.0, f"{r['error']['code']}: "
                                                   f"{r['error']['message'][:200]}")
                continue
            rec.answer(user=i, at=at, method=m, q=q, k=K, generation=r["generation"],
                       hits=_hits(r["hits"]))
    elif not isinstance(body["answer"], str):
        raise TypeError("answer is not text")


def check_generations(answers: list[dict], db: Path) -> dict:
    """Were the answers each one generation's? (see the module docstring)"""
    by_key: dict[tuple, set] = defaultdict(set)
    for a in answers:
        by_key[(a["method"], a["q"], a["k"], a["generation"])].add(tuple(a["hits"]))
    differing = [k for k, v in by_key.items() if len(v) > 1]

    backwards = 0
    last: dict[tuple, int] = {}
    for a in sorted(answers, key=lambda a: a["at"]):
        key = (a["user"], a["method"])
        if a["generation"] < last.get(key, -1):
            backwards += 1
        last[key] = max(a["generation"], last.get(key, -1))

    short = sum(1 for a in answers if a["method"] in FULL_PAGE and len(a["hits"]) != a["k"])

    # The store's own rows (read-only; the versioned columns are the store's schema).
    ids = sorted({h[0] for a in answers for h in a["hits"]})
    rows = {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        for i in range(0, len(ids), 500):
            batch = ids[i:i + 500]
            rows.update((r[0], r[1:]) for r in conn.execute(
                "SELECT c.id, c.created_gen, c.deleted_gen, d.doc_id, c.text FROM chunks c "
                f"JOIN documents d ON d.id = c.document WHERE c.id IN ({','.join('?' * len(batch))})",
                batch))
    not_live, purged, wrong_text = defaultdict(int), 0, 0
    for a in answers:
        for chunk_id, doc_id, _, text_hash in a["hits"]:
            row = rows.get(chunk_id)
            if row is None:
                purged += 1
                continue
            created, deleted, stored_doc, text = row
            if not (created <= a["generation"] and (deleted is None or deleted > a["generation"])):
                not_live[a["method"]] += 1
            if stored_doc != doc_id or hashlib.sha1(text.encode()).hexdigest()[:12] != text_hash:
                wrong_text += 1
    generations = defaultdict(set)
    for a in answers:
        generations[a["method"]].add(a["generation"])
    plain = [m for m in {a["method"] for a in answers} if ":" not in m]
    consistent_plain = (not any(k[0] in plain for k in differing) and backwards == 0
                        and short == 0 and not any(not_live[m] for m in plain)
                        and wrong_text == 0)
    return {
        "answers_checked": len(answers),
        "generations_seen": {m: sorted(g) for m, g in sorted(generations.items())},
        "same_generation_different_hits": {m: sum(1 for k in differing if k[0] == m)
                                           for m in sorted(generations)},
        "generation_went_backwards": backwards,
        "short_pages": short,
        "hits_not_live_at_generation": {m: not_live[m] for m in sorted(generations)},
        "hits_purged_since": purged,
        "hits_with_wrong_text": wrong_text,
        "consistent": consistent_plain and not differing and not any(not_live.values()),
        "consistent_plain_methods": consistent_plain,
    }


def run_ingest(store: Path, source: Path, log: list) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ragmini.cli", "ingest", str(source), "--store", str(store),
           "--methods", "glove,bm25", "--no-progress"]
    out = tempfile.TemporaryFile(mode="w+")
    log.append(out)
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": os.environ.get(
                                "OMP_NUM_THREADS", "1")})


def build_store(target: Path) -> None:
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    with Store.open(target, create=True) as store:
        ingest_and_index(store, [CORPUS], ["glove", "bm25"], progress=False)


def warm_up(base: str, ask: bool, lm: bool, queries: list[str]) -> list[str]:
    """One request of each kind, untimed (models load on first use); the queries
    every method can answer now (a man-page query may have no word the bundled
    corpus has: that is a 400, not a server error)."""
    import httpx

    with httpx.Client(base_url=base, timeout=300) as c:
        usable = [q for q in queries if all(
            c.get("/api/search", params={"q": q, "method": m, "k": 1}).status_code == 200
            for m in METHODS[:2])]
        for m in METHODS:
            c.get("/api/search", params={"q": "word vectors", "method": m, "k": K}).raise_for_status()
        c.post("/api/compare", json={"q": "word vectors", "methods": list(METHODS), "k": K}
               ).raise_for_status()
        if ask:
            c.post("/api/ask", json={"question": "what is bm25?", "generator": "extractive",
                                     "method": "bm25"}).raise_for_status()
        if ask and lm:
            c.post("/api/ask", json={"question": "what is bm25?", "method": "bm25",
                                     "max_new_tokens": 24}).raise_for_status()
    return usable


def status(base: str) -> dict:
    import httpx

    s = httpx.get(f"{base}/api/status", timeout=120).json()
    return {"generation": s["generation"], "documents": s["documents"], "chunks": s["chunks"],
            "index_generations": {m["method"]: m["index_generation"] for m in s["methods"]}}


def load(base: str, pid: int, args, store: Path) -> dict:
    mix = tuple((label, w) for label, w in MIX if not (args.no_ask and label.startswith("ask")))
    lm_share = 0.0 if args.no_ask else args.lm_share
    queries = warm_up(base, not args.no_ask, lm_share > 0,
                      load_queries(0 if args.no_ingest else 60))
    before = status(base)
    rec = Recorder()
    rss: list[tuple[float, float]] = []
    logs: list = []
    ingest = None if args.no_ingest else run_ingest(store, args.ingest, logs)
    started = time.monotonic()
    stop = [started + args.duration]  # moved on while the ingest runs
    threads = [threading.Thread(target=user, args=(i, base, queries, stop, lm_share, rec, mix),
                                daemon=True) for i in range(args.users)]
    for t in threads:
        t.start()
    ingest_end = None
    try:
        while any(t.is_alive() for t in threads):
            now = time.monotonic()
            rss.append((round(now - started, 1), round(rss_mib(pid), 1)))
            if ingest is not None and ingest_end is None and ingest.poll() is not None:
                ingest_end = now - started
                stop[0] = max(stop[0], now + args.tail)
            if ingest is not None and ingest_end is None:
                stop[0] = max(stop[0], min(now + args.tail, started + args.max_duration))
            time.sleep(1)
    except BaseException:  # interrupted: stop the users and the ingest, then the server
        stop[0] = 0
        if ingest is not None and ingest.poll() is None:
            ingest.terminate()
            ingest.wait()
        raise
    elapsed = time.monotonic() - started
    ingest_result = None
    if ingest is not None:
        if ingest.poll() is None:  # over --max-duration: let it finish, untimed
            ingest.wait()
            ingest_end = ingest_end or time.monotonic() - started
        logs[0].seek(0)
        ingest_result = {"source": str(args.ingest), "returncode": ingest.returncode,
                         "seconds": round(ingest_end, 1),
                         "output_tail": logs[0].read()[-600:]}
    after = status(base)
    # When the first answer from a newer index came back: the steady window ends there.
    landed = min((a["at"] - started for a in rec.answers
                  if a["generation"] > before["generation"]), default=None)
    if ingest_result is not None:
        ingest_result["first_answer_from_new_index_s"] = (None if landed is None
                                                         else round(landed, 1))
    per = {}
    for label in sorted(rec.latency):
        ms = rec.latency[label]
        timed = [v for v in ms if v > 0]
        per[label] = {"requests": len(ms), "requests_per_s": round(len(ms) / elapsed, 2),
                      "errors": len(rec.errors.get(label, [])),
                      "p50_ms": round(percentile(timed, 50), 1),
                      "p95_ms": round(percentile(timed, 95), 1),
                      "p99_ms": round(percentile(timed, 99), 1)}
    total = sum(len(v) for label, v in rec.latency.items() if not label.startswith("compare ("))
    errors = sum(len(v) for v in rec.errors.values())
    return {
        "queries": len(queries),
        "users": args.users, "seconds": round(elapsed, 1), "requests": total,
        "requests_per_s": round(total / elapsed, 1), "errors": errors,
        "error_samples": {k: v[:3] for k, v in rec.errors.items()},
        "endpoints": per,
        "store_before": before, "store_after": after, "ingest": ingest_result,
        "rss_mib": rss_phases(rss, args.settle, landed if landed is not None else ingest_end),
        "generations": check_generations(rec.answers, store / "ragmini.db"),
    }


def rss_phases(rss: list[tuple[float, float]], settle: float, landed: float | None) -> dict:
    """The server's RSS: at the start, while it settles (each worker thread's first
    requests grow the allocator's arenas and the models' buffers), then steady until
    the ingest's indexes land (growth per minute there is the leak figure), then after."""
    steady_end = landed if landed is not None else float("inf")
    steady = [(t, r) for t, r in rss if settle <= t <= steady_end]
    after = [r for t, r in rss if landed is not None and t > landed]
    slope = None
    if len(steady) >= 10:
        ts, rs = zip(*steady)
        mt, mr = sum(ts) / len(ts), sum(rs) / len(rs)
        slope = sum((t - mt) * (r - mr) for t, r in steady) / sum((t - mt) ** 2 for t in ts)
    return {
        "start": rss[0][1] if rss else None,
        "settle_seconds": settle,
        "steady_first": steady[0][1] if steady else None,
        "steady_last": steady[-1][1] if steady else None,
        "steady_max": max(r for _, r in steady) if steady else None,
        "steady_growth_mib_per_min": None if slope is None else round(slope * 60, 2),
        "after_ingest_max": max(after) if after else None,
        "max": max(r for _, r in rss) if rss else None,
        "samples": rss,
    }


def markdown(result: dict, load_avg: tuple) -> str:
    ing = result["ingest"]
    g = result["generations"]
    lines = [
        f"{result['users']} users for {result['seconds']} s on loopback"
        + (f", while `ragmini ingest` added {ing and result['store_after']['documents'] - result['store_before']['documents']} "
           f"man pages ({ing['seconds']} s) to the store being served" if ing else ", no ingest")
        + f" (load average before: {load_avg[0]:.2f}, {os.cpu_count()} cores, server and "
          "clients on the same machine):",
        "",
        "| endpoint | requests | req/s | errors | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, e in result["endpoints"].items():
        if label.startswith("compare ("):
            continue
        lines.append(f"| {label} | {e['requests']} | {e['requests_per_s']} | {e['errors']} | "
                     f"{e['p50_ms']} | {e['p95_ms']} | {e['p99_ms']} |")
    r = result["rss_mib"]
    lines += [
        f"| **all** | {result['requests']} | {result['requests_per_s']} | {result['errors']} | | | |",
        "",
        f"Server RSS: {r['start']} MiB at the start; after {r['settle_seconds']:g} s of settling "
        f"{r['steady_first']} -> {r['steady_last']} MiB (max {r['steady_max']}; "
        f"{r['steady_growth_mib_per_min']} MiB/min)"
        + (" until the ingest's indexes landed" if ing else "")
        + (f", then up to {r['after_ingest_max']} MiB with the bigger store" if r["after_ingest_max"]
           else "") + f"; {r['max']} MiB at most.",
        f"Generations: {g['answers_checked']} search/compare answers checked; generations seen "
        + ", ".join(f"{m}: {v[0]}..{v[-1]} ({len(v)})" for m, v in g["generations_seen"].items())
        + f"; consistent (plain methods): {g['consistent_plain_methods']}; "
        f"all, fusion included: {g['consistent']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from ragmini.server.process import running_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120, help="seconds of load, at least")
    parser.add_argument("--max-duration", type=float, default=900,
                        help="stop the load here even if the ingest goes on")
    parser.add_argument("--tail", type=float, default=30,
                        help="seconds of load after the ingest (the new indexes answer)")
    parser.add_argument("--settle", type=float, default=60,
                        help="seconds before RSS counts as steady (arenas, buffers grow first)")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--ingest", type=Path, default=MANPAGES / "corpus.jsonl")
    parser.add_argument("--store", type=Path, default=None,
                        help="serve (and ingest into) this store; default: a fresh one")
    parser.add_argument("--no-ask", action="store_true",
                        help="search and compare only (ask loads MiniLM and costs most)")
    parser.add_argument("--lm-share", type=float, default=0.002,
                        help="share of requests that ask the default language model (SmolLM2 "
                             "offline; seconds of CPU each, so a small one; 0: none)")
    parser.add_argument("--out", type=Path, default=BENCH / "load_results.json")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    # SIGTERM stops the users, the ingest and the server cleanly, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.no_ingest and not args.ingest.is_file():
        parser.error(f"{args.ingest} does not exist (build it with `ragmini datasets build "
                     "manpages`), or pass --no-ingest")
    load_avg = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="ragmini-load-"))
    try:
        store = args.store
        if store is None:
            store = tmp / "store"
            build_store(store)
        with running_server(store) as base:
            result = load(base, base.pid, args, store)
            server_errors = [ln for ln in base.log().splitlines() if "Traceback" in ln
                             or ln.startswith("ERROR")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"load_average_before": [round(x, 2) for x in load_avg],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "cpus": os.cpu_count(), "store": str(args.store or "bundled corpus, glove+bm25"),
              "server_log_errors": len(server_errors), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_results("load", result, out=args.out)
    table = markdown(result, load_avg)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    print(table)
    g = result["generations"]
    ok = result["errors"] == 0 and g["consistent_plain_methods"] and not server_errors
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
