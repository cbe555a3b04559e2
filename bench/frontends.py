"""What the agent and chat-app front ends cost: MCP `search` over stdio and over streamable
HTTP against the in-process `Store.search`, and `/v1/chat/completions` against `/api/ask`.

On the bundled corpus (ingested into a temporary store with the default methods through
`ragmini.Store`), in one run:
- (a) the same eval queries through `Store.search` in this process, the official `mcp`
  client over stdio (spawning `.venv/bin/ragmini mcp --store ...`), the same client over
  streamable HTTP (a live `ragmini serve` at /mcp), and, for reference, `GET /api/search`
  on that server; the paths take turns query by query (so a busy moment of this shared
  machine hits them alike), after a warm-up of each; p50/p95, and each path's overhead
  over the in-process call (difference and ratio of the p50s);
- (b) the same questions through `POST /api/ask` (httpx) and `/v1/chat/completions` (the
  official `openai` client, model `ragmini-extractive`, not streamed), taking turns;
  p50/p95, the difference and the ratio of the p50s.

    python -m bench.frontends [--calls 50] [--warmup 5] [--out PATH]   # make bench-frontends
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

if not __package__:  # `python bench/frontends.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    ANSWERS,
    BENCH,
    CORPUS,
    QUERIES,
    RAGMINI,
    Target,
    median_ms,
    summary_ms,
    targets_table,
    temp_dir,
    write_results,
)

MODEL = "ragmini-extractive"


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def _cycle(items: list[str], n: int) -> list[str]:
    return [items[i % len(items)] for i in range(n)]


def _compare(paths: dict[str, list[float]], base: str) -> dict:
    """Per path: p50/p95 (ms), and against `base`: the p50 difference (ms) and ratio, and
    the median of the per-call differences (the same query or question, the same turn),
    which a busy moment of the machine sways less."""
    out = {name: summary_ms(times) for name, times in paths.items()}
    ref = out[base]["p50"]
    for name, s in out.items():
        if name != base:
            s["overhead_p50_ms"] = round(s["p50"] - ref, 3)
            s["ratio_p50"] = round(s["p50"] / ref, 3) if ref else None
            diffs = [a - b for a, b in zip(paths[name], paths[base], strict=True)]
            s["paired_overhead_median_ms"] = median_ms(diffs)
            s["paired_overhead_median_ci95_ms"] = _bootstrap_ci_ms(diffs)
    return out


def _bootstrap_ci_ms(diffs: list[float], rounds: int = 2000) -> list[float]:
    """A 95% bootstrap interval of the median of `diffs` (seconds), in ms: an interval
    holding 0 means this run cannot tell the two paths apart."""
    import random
    import statistics

    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(rounds))
    return [round(medians[int(0.025 * rounds)] * 1000, 3),
            round(medians[int(0.975 * rounds) - 1] * 1000, 3)]


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def _now(value: float) -> float:
    return value


async def _atimed(coro) -> float:
    started = time.perf_counter()
    result = await coro
    elapsed = time.perf_counter() - started
    if getattr(result, "is_error", False):  # a tool error is no round trip to count
        raise RuntimeError(f"tool error: {result.content[0].text}")
    return elapsed


async def mcp_search(store, store_dir: Path, base: str, queries: list[str],
                     warmup: list[str], methods: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per method, seconds per search on each path, the paths taking turns query by query."""
    import httpx
    import httpx2
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    stdio = StdioServerParameters(command=str(RAGMINI), args=["mcp", "--store", str(store_dir)])
    out: dict[str, dict[str, list[float]]] = {}
    async with Client(stdio) as over_stdio, \
            httpx2.AsyncClient(timeout=120) as raw, \
            Client(streamable_http_client(f"{base}/mcp", http_client=raw)) as over_http, \
            httpx.AsyncClient(base_url=base, timeout=120) as rest:

        async def rest_search(q: str, method: str):
            (await rest.get("/api/search", params={"q": q, "method": method})).raise_for_status()

        calls = {
            # Called on the loop's thread: the clients' readers are idle between calls.
            "in_process": lambda q, m: _now(_timed(lambda: store.search(q, method=m))),
            "mcp_stdio": lambda q, m: _atimed(over_stdio.call_tool(
                "search", {"query": q, "method": m})),
            "mcp_http": lambda q, m: _atimed(over_http.call_tool(
                "search", {"query": q, "method": m})),
            "api_search_http": lambda q, m: _atimed(rest_search(q, m)),
        }
        for method in methods:
            times: dict[str, list[float]] = {name: [] for name in calls}
            for q in warmup:
                for call in calls.values():
                    await call(q, method)
            for i, q in enumerate(queries):
                names = list(calls)
                names = names[i % len(names):] + names[:i % len(names)]  # rotate who goes first
                for name in names:
                    times[name].append(await calls[name](q, method))
            out[method] = times
    return out


def chat_against_ask(base: str, questions: list[str], warmup: list[str]) -> dict[str, list[float]]:
    """Seconds per answer through /api/ask and /v1/chat/completions, taking turns."""
    import httpx
    import openai

    times: dict[str, list[float]] = {"api_ask": [], "v1_chat": []}
    with httpx.Client(base_url=base, timeout=120) as http, \
            openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0,
                          timeout=120) as client:

        def ask(q: str) -> None:
            r = http.post("/api/ask", json={"question": q, "generator": "extractive"})
            r.raise_for_status()

        def chat(q: str) -> None:
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": q}])
            assert reply.choices[0].message.content

        calls = {"api_ask": ask, "v1_chat": chat}
        for q in warmup:
            for call in calls.values():
                call(q)
        for i, q in enumerate(questions):
            order = ("api_ask", "v1_chat") if i % 2 == 0 else ("v1_chat", "api_ask")
            for name in order:
                times[name].append(_timed(lambda c=calls[name], q=q: c(q)))
    return times


def main(argv: list[str] | None = None) -> int:
    import ragmini
    from ragmini.api import defaults as D
    from ragmini.server.process import running_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="timed calls per path (50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per path first (5)")
    parser.add_argument("--out", type=Path, default=BENCH / "frontends_results.json")
    args = parser.parse_args(argv)

    queries, questions = _texts(QUERIES), _texts(ANSWERS)
    timed_q, warm_q = _cycle(queries, args.calls), _cycle(queries[::-1], args.warmup)
    timed_a, warm_a = _cycle(questions, args.calls), _cycle(questions[::-1], args.warmup)
    # The default method (its cost includes encoding the query with MiniLM), and bm25,
    # so cheap that what is left is the front end's own cost.
    methods = list(dict.fromkeys([D.METHOD, "bm25"]))
    with temp_dir("ragmini-frontends-bench-") as tmp:
        store_dir = tmp / "store"
        started = time.perf_counter()
        with ragmini.open(store_dir) as store:
            ingested = store.ingest([CORPUS])
            ingest_s = time.perf_counter() - started
            # Both servers and this process read the store; nothing writes to it now.
            with running_server(store_dir) as base:
                search_times = asyncio.run(mcp_search(store, store_dir, base, timed_q, warm_q,
                                                      methods))
                chat_times = chat_against_ask(base, timed_a, warm_a)
    search = {m: _compare(times, "in_process") for m, times in search_times.items()}
    chat = _compare(chat_times, "api_ask")
    v1 = chat["v1_chat"]
    targets = [Target(f"MCP {how} `search` ({m}) overhead over in-process, p50",
                      search[m][path]["overhead_p50_ms"], 20.0, "<", "ms")
               for m in methods for how, path in (("stdio", "mcp_stdio"), ("HTTP", "mcp_http"))]
    # /v1 adds a pydantic parse, the Markdown reply and the OpenAI envelope to the same
    # Store.ask: its goal is 10% of /api/ask or 5 ms, whichever is larger.
    v1_goal = round(max(5.0, 0.10 * chat["api_ask"]["p50"]), 3)
    targets.append(Target("/v1/chat/completions overhead over /api/ask, p50 (goal: 5 ms or "
                          "10% of /api/ask, the larger)", v1["overhead_p50_ms"], v1_goal, "<",
                          "ms"))
    results = {
        "corpus": "corpus/docs (bundled)", "documents": ingested.documents,
        "chunks": ingested.chunks, "methods": [m.method for m in ingested.methods],
        "ingest_s": round(ingest_s, 1),
        "calls": args.calls, "warmup": args.warmup,
        "search": {"default_method": D.METHOD, "k": D.SEARCH_K,
                   "queries": "corpus/queries.jsonl", **search},
        "chat": {"generator": "extractive", "model": MODEL, "stream": False,
                 "questions": "corpus/answers.jsonl", **chat},
        "targets_table": targets_table(targets),
    }
    path = write_results("frontends", results, targets, out=args.out)
    for title, rows in [*search.items(), ("ask", chat)]:
        for name, s in rows.items():
            lo, hi = s.get("paired_overhead_median_ci95_ms", (0, 0))
            extra = (f" | overhead {s['overhead_p50_ms']:+.2f} ms, x{s['ratio_p50']:.2f}, "
                     f"paired {s['paired_overhead_median_ms']:+.2f} ms [{lo:+.1f}, {hi:+.1f}]"
                     if "overhead_p50_ms" in s else "")
            print(f"{title:<6} {name:<16} p50 {s['p50']:8.2f} ms  p95 {s['p95']:8.2f} ms{extra}")
    print()
    print(targets_table(targets))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
