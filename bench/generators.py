"""Generators compared on this machine: extractive, SmolLM2 on transformers
(smollm2-torch), SmolLM2 on llama.cpp in-process (smollm2), and the same GGUF
behind a local `python -m llama_cpp.server` through `openai:smollm2`.

    python -m bench.generators            # make bench-generators: ~30-40 min on 2 cores
    python -m bench.generators --limit 6  # a smoke run

Each generator runs in a process of its own, so peak RSS is its own (the
server's is read from /proc and reported beside its client's). Per generator:
load time; time to first token and tokens/s of the answers it wrote; `ask` p50
and p95 on the bundled store with the defaults (k=3, strict, abstention); and on
the bundled test split and the FAQ test split, support rate and answer
similarity with --strict and without, paired tests between generators, how
often strict mode replaced the generated answer by the extractive one, and the
seconds of generation that threw away. Writes bench/generators_results.json.

The strict and plain passes share each generated draft (greedy decoding gives
the same text twice), so only the strict pass, which runs first, pays for
generation and gives the ask latencies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    ANSWERS,
    CORPUS,
    REPO,
    Target,
    peak_rss_mb,
    percentile,
    targets_table,
    temp_dir,
    write_results,
)

FAQ = Path("/work/data/faq")
GENERATORS = ("extractive", "smollm2-torch", "smollm2", "openai:smollm2")
LM = {"smollm2-torch", "smollm2", "openai:smollm2"}
METRICS = ("support_rate", "answer_similarity", "citation_validity", "token_f1")


# -- the worker: one generator, in a process of its own ------------------------------------

class Recorded:
    """A language-model generator that times what it writes and keeps each draft, so
    the second pass over the same prompts (strict off) reuses the first's text."""

    def __init__(self, generator, counter):
        self.inner, self.count_tokens = generator, counter
        self.name = generator.name
        self.fallback_from = None
        self.needs_model = True
        self.context_window = generator.context_window
        self.drafts: dict = {}
        self.records: list[dict] = []  # per generation: seconds, ttft, tokens
        self.last: dict | None = None

    def prompt(self, question, sources, budget):
        from generation.models import Generator
        from generation.prompt import build_prompt

        if isinstance(self.inner, Generator):
            return build_prompt(question, sources, self.inner.tokenizer, chat=self.inner.chat,
                                budget=budget)
        return self.inner.prompt(question, sources, budget)

    def write(self, prompt, sampling, on_text=None):
        from generation.answer import generate
        from generation.models import Generator

        key = (tuple(prompt.input_ids), json.dumps(prompt.messages), sampling)
        if key in self.drafts:
            self.last = None
            return self.drafts[key]
        times: list[float] = []

        def seen(piece: str) -> None:
            times.append(time.perf_counter())
            if on_text:
                on_text(piece)

        started = time.perf_counter()
        if isinstance(self.inner, Generator):
            text = generate(self.inner, prompt.input_ids, sampling, seen)
        else:
            text = self.inner.write(prompt, sampling, seen)
        ended = time.perf_counter()
        tokens = self.count_tokens(text) if text else 0
        self.last = {"seconds": ended - started, "prompt_tokens": prompt.n_tokens,
                     "tokens": tokens,
                     "ttft": (times[0] - started) if times else None,
                     "tokens_per_s": ((tokens - 1) / (times[-1] - times[0])
                                      if tokens > 1 and len(times) > 1 and times[-1] > times[0]
                                      else None)}
        self.records.append(self.last)
        self.drafts[key] = text
        return text


def _token_counter(generator):
    """Tokens of a text in SmolLM2's vocabulary (every LM here is SmolLM2)."""
    tokenizer = getattr(generator, "tokenizer", None)
    if tokenizer is None:  # openai: the packaged GGUF's vocabulary, loaded alone
        from llama_cpp import Llama

        from core.models import smollm2_gguf

        vocab = Llama(model_path=str(smollm2_gguf()), vocab_only=True, verbose=False)
        return lambda text: len(vocab.tokenize(text.encode(), add_bos=False))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _bundled_store(folder: Path):
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    store = Store.open(folder / "store", create=True)
    ingest_and_index(store, [CORPUS], ["sbert"], progress=False)
    return store


def _faq_store():
    from eval.beir import dataset_store_dir
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    config = ChunkConfig()
    store = Store.open(dataset_store_dir(FAQ, config.size, config.overlap), create=True)
    ingest_and_index(store, [FAQ / "corpus.jsonl"], ["sbert"], config=config, progress=False)
    return store


def worker(name: str, base_url: str | None, limit: int | None) -> dict:
    from eval.answers import answer_questions, load_qa_dataset, load_question_file
    from generation.models import load_generator
    from retrieval.methods import get_embedder

    started = time.perf_counter()
    generator = load_generator(name, base_url=base_url)
    load_s = time.perf_counter() - started
    recorded = Recorded(generator, _token_counter(generator)) if name in LM else None
    used = recorded or generator
    out: dict = {"name": name, "label": generator.name, "load_s": round(load_s, 3),
                 "datasets": {}}
    with temp_dir() as folder:
        for dataset, open_store, load in (
                ("bundled", lambda: _bundled_store(folder),
                 lambda: load_question_file(ANSWERS, "test")),
                ("faq", _faq_store, lambda: load_qa_dataset(FAQ, "test"))):
            questions = load()[:limit] if limit else load()
            with open_store() as store:
                encoder = get_embedder("sbert", store)
                encoder.embed(["warm up"])
                rows = {}
                for strict in (True, False):
                    first = len(recorded.records) if recorded else 0
                    results = answer_questions(store, questions, used, encoder, strict=strict)
                    gens = recorded.records[first:] if recorded else []
                    rows["strict" if strict else "plain"] = {
                        "results": [_result(r) for r in results],
                        "latency_ms": [r.latency_ms for r in results],
                        "generations": gens}
                out["datasets"][dataset] = {"qids": [q.qid for q in questions],
                                            "references": [q.reference for q in questions],
                                            "relevant": [sorted(q.relevant) for q in questions],
                                            **rows}
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _result(r) -> dict:
    return {"qid": r.qid, "answer": r.answer, "abstained": r.abstained,
            "citations": r.citations, "invalid_citations": r.invalid_citations,
            "cited_docs": r.cited_docs, "support_rate": r.support_rate,
            "unsupported": r.unsupported, "similarity": r.similarity, "token_f1": r.token_f1,
            "latency_ms": r.latency_ms}


# -- the parent: start the server, run the workers, compare ------------------------------

def _run_worker(name: str, base_url: str | None, limit: int | None) -> dict:
    with temp_dir() as folder:
        target = folder / "out.json"
        command = [sys.executable, "-m", "bench.generators", "--worker", name,
                   "--out", str(target)]
        if base_url:
            command += ["--base-url", base_url]
        if limit:
            command += ["--limit", str(limit)]
        print(f"  {name} ...", flush=True)
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True)
        print(f"  {name} done in {time.perf_counter() - started:.0f} s", flush=True)
        return json.loads(target.read_text())


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _question_results(data: dict, mode: str):
    from eval.answers import Question, QuestionResult

    questions = [Question(q, "", ref, frozenset(rel)) for q, ref, rel in
                 zip(data["qids"], data["references"], data["relevant"])]
    results = [QuestionResult(**r) for r in data[mode]["results"]]
    return questions, results


def summarise(runs: dict[str, dict], resamples: int) -> dict:
    from eval.answers import PAIRED, per_question_metrics
    from eval.answers import summarise as answer_summary
    from eval.stats import compare

    table: dict = {}
    comparisons: dict = {}
    for dataset in ("bundled", "faq"):
        for mode in ("strict", "plain"):
            per_question = {}
            for name, run in runs.items():
                data = run["datasets"][dataset]
                questions, results = _question_results(data, mode)
                m = answer_summary(questions, results)
                row = table.setdefault(name, {}).setdefault(dataset, {})
                row[mode] = {k: round(m[k], 4) for k in
                             ("support_rate", "answer_similarity", "citation_validity",
                              "token_f1", "answered")}
                per_question[name] = per_question_metrics(questions, results)
            comparisons[f"{dataset}/{mode}"] = [
                c.to_dict() for c in compare(per_question, PAIRED, resamples, 0)
                if c.metric in ("support_rate", "answer_similarity")]
        for name, run in runs.items():
            if name not in LM:
                continue
            data = run["datasets"][dataset]
            extractive = runs.get("extractive", {}).get("datasets", {}).get(dataset)
            replaced, thrown = _replaced(data, extractive)
            row = table[name][dataset]
            row["strict_replaced"] = replaced
            row["thrown_away_s"] = thrown
    return {"answers": table, "comparisons": comparisons}


def _replaced(data: dict, extractive: dict | None) -> tuple[dict, dict]:
    """How often strict mode replaced the generated answer by the extractive one (its
    text is then the extractive answer's), and the generation seconds lost."""
    if extractive is None:
        return {}, {}
    # The fallback is the extractive answer as written (plain: strict may trim it).
    reference = {r["qid"]: r["answer"] for r in extractive["plain"]["results"]}
    generated = [r for r in data["strict"]["results"] if not r["abstained"]]
    times = [g["seconds"] for g in data["strict"]["generations"]]
    lost = [t for r, t in zip(generated, times) if r["answer"] == reference.get(r["qid"])]
    n = len(generated)
    return ({"replaced": len(lost), "generated": n,
             "rate": round(len(lost) / n, 4) if n else None},
            {"total": round(sum(lost), 2),
             "median_per_replaced": round(statistics.median(lost), 2) if lost else None,
             "median_generation": round(statistics.median(times), 2) if times else None})


def speed(run: dict) -> dict:
    gens = [g for d in run["datasets"].values() for g in d["strict"]["generations"]]
    latencies = run["datasets"]["bundled"]["strict"]["latency_ms"]
    out = {"load_s": run["load_s"], "peak_rss_mb": run["peak_rss_mb"],
           "ask_p50_s": round(percentile(latencies, 50) / 1000, 3),
           "ask_p95_s": round(percentile(latencies, 95) / 1000, 3),
           "asks": len(latencies)}
    if gens:
        ttft = [g["ttft"] for g in gens if g["ttft"] is not None]
        rates = [g["tokens_per_s"] for g in gens if g["tokens_per_s"]]
        out |= {"ttft_p50_s": round(statistics.median(ttft), 3) if ttft else None,
                "tokens_per_s_p50": round(statistics.median(rates), 1) if rates else None,
                "answer_tokens_p50": statistics.median(g["tokens"] for g in gens),
                "prompt_tokens_p50": statistics.median(g["prompt_tokens"] for g in gens),
                "generations": len(gens)}
    return out


def markdown(speeds: dict, answers: dict) -> str:
    head = ("| generator | load s | first token s | tokens/s | ask p50 s | ask p95 s | "
            "peak RSS MB | support strict (bundled / FAQ) | support plain | "
            "similarity strict | replaced by strict |")
    rows = [head, "|" + "---|" * 11]
    for name, s in speeds.items():
        a = answers.get(name, {})

        def pair(mode, key):
            return " / ".join(f"{a[d][mode][key]:.3f}" for d in ("bundled", "faq") if d in a)

        replaced = " / ".join(
            f"{a[d]['strict_replaced']['replaced']}/{a[d]['strict_replaced']['generated']}"
            for d in ("bundled", "faq") if a.get(d, {}).get("strict_replaced")) or "-"
        rss = f"{s['peak_rss_mb']:.0f}" + (f" + server {s['server_rss_mb']:.0f}"
                                           if s.get("server_rss_mb") else "")
        rows.append(f"| {name} | {s['load_s']:.2f} | {_f(s.get('ttft_p50_s'))} | "
                    f"{_f(s.get('tokens_per_s_p50'), 1)} | {s['ask_p50_s']:.2f} | "
                    f"{s['ask_p95_s']:.2f} | {rss} | {pair('strict', 'support_rate')} | "
                    f"{pair('plain', 'support_rate')} | {pair('strict', 'answer_similarity')} | "
                    f"{replaced} |")
    return "\n".join(rows)


def _f(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="questions per split")
    parser.add_argument("--only", default=",".join(GENERATORS))
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--ngram-ban", action="store_true",
                        help="compare stand-ins for no_repeat_ngram on llama.cpp instead "
                             "(bench/generators_ngram_results.json)")
    args = parser.parse_args(argv)
    if args.worker:
        Path(args.out).write_text(json.dumps(worker(args.worker, args.base_url, args.limit)))
        return
    if args.ngram_ban:
        path = write_results("generators_ngram", ngram_variants(args.limit))
        print(f"wrote {path.relative_to(REPO)}")
        return

    from core.models import smollm2_gguf
    from generation.llama_server import llama_server

    names = [n for n in args.only.split(",") if n]
    runs: dict[str, dict] = {}
    speeds: dict[str, dict] = {}
    for name in names:
        if name.startswith("openai:"):
            with llama_server(smollm2_gguf(), alias=name.split(":", 1)[1]) as server:
                runs[name] = _run_worker(name, server.base_url, args.limit)
                server_rss = _vm_hwm_mb(server.process.pid)
            speeds[name] = speed(runs[name]) | {"server_rss_mb": server_rss}
        else:
            if name == "smollm2-torch":  # its first use converts the GGUF (cached): not timed
                subprocess.run([sys.executable, "-c", "from generation.models import "
                                "load_generator; load_generator('smollm2-torch')"],
                               cwd=REPO, check=True)
            runs[name] = _run_worker(name, None, args.limit)
            speeds[name] = speed(runs[name])
    summary = summarise(runs, args.resamples)
    torch_rate = speeds.get("smollm2-torch", {}).get("tokens_per_s_p50")
    llama_rate = speeds.get("smollm2", {}).get("tokens_per_s_p50")
    ratio = round(llama_rate / torch_rate, 2) if torch_rate and llama_rate else None
    default_p50 = speeds.get("extractive", {}).get("ask_p50_s")
    smollm2_p50 = speeds.get("smollm2", {}).get("ask_p50_s")
    strict_loss = _strict_support_loss(summary["comparisons"])
    targets = [
        Target("llama.cpp tokens/s over the torch path's", ratio, 4.0, ">=", "x"),
        Target("ask p50 with the default generator (extractive), bundled store",
               default_p50, 3.0, "<=", " s"),
        Target("ask --generator smollm2 p50, bundled store", smollm2_p50, 5.0, "<=", " s"),
        Target("significant support-rate losses under --strict, smollm2 (llama.cpp) vs "
               "smollm2-torch", strict_loss, 0, "<="),
    ]
    results = {"limit": args.limit, "speed": speeds, **summary,
               "per_question": {n: {d: {m: [{k: r[k] for k in ("qid", "answer", "abstained",
                                                              "support_rate", "similarity")}
                                            for r in data[m]["results"]]
                                        for m in ("strict", "plain")}
                                    for d, data in run["datasets"].items()}
                                for n, run in runs.items()}}
    path = write_results("generators", results, targets)
    print(markdown(speeds, summary["answers"]))
    print()
    print(targets_table(targets))
    print(f"\nwrote {path.relative_to(REPO)}")


# -- no_repeat_ngram on llama.cpp: which stand-in, measured ---------------------------------

NGRAM_VARIANTS = {
    "ban 3-grams of the answer (ragmini)": {},
    "ban 3-grams of prompt and answer (transformers' rule)": {"scope": "all"},
    "no ban": {"n": 0},
    "repeat_penalty 1.1 over the last 64 tokens, no ban": {"n": 0, "repeat_penalty": 1.1},
}


def ngram_variants(limit: int | None) -> dict:
    """SmolLM2 on llama.cpp, greedy, on the bundled dev split without strict, with each
    stand-in for transformers' no_repeat_ngram_size=3: support, similarity, loops."""
    from eval.answers import answer_questions, load_question_file, summarise
    from generation import llamacpp
    from generation.answer import Sampling
    from generation.models import load_generator
    from retrieval.methods import get_embedder

    original = llamacpp._sampling_args
    generator = load_generator("smollm2")
    questions = load_question_file(ANSWERS, "dev")
    questions = questions[:limit] if limit else questions
    out = {}
    with temp_dir() as folder, _bundled_store(folder) as store:
        encoder = get_embedder("sbert", store)
        for label, variant in NGRAM_VARIANTS.items():
            def args(sampling, input_ids, variant=variant):
                n = variant.get("n", sampling.no_repeat_ngram)
                got = original(Sampling(sampling.temperature, sampling.top_p, sampling.top_k,
                                        sampling.max_new_tokens, sampling.seed, n), input_ids,
                               generator.citation_tokens)
                if n and variant.get("scope") == "all":
                    from llama_cpp import LogitsProcessorList

                    got["logits_processor"] = LogitsProcessorList(
                        [llamacpp._NoRepeatNgram(n, start=0)])
                got["repeat_penalty"] = variant.get("repeat_penalty", 1.0)
                return got

            llamacpp._sampling_args = args
            try:
                started = time.perf_counter()
                results = answer_questions(store, questions, generator, encoder, strict=False)
                seconds = time.perf_counter() - started
            finally:
                llamacpp._sampling_args = original
            m = summarise(questions, results)
            answered = [r for r in results if not r.abstained]
            out[label] = {"support_rate": round(m["support_rate"], 4),
                          "answer_similarity": round(m["answer_similarity"], 4),
                          "token_f1": round(m["token_f1"], 4),
                          "looping_answers": sum(_loops(r.answer) for r in answered),
                          "answered": len(answered), "seconds": round(seconds, 1)}
            print(f"  {label}: {out[label]}", flush=True)
    return {"split": "dev", "questions": len(questions), "variants": out}


def _loops(text: str, n: int = 4) -> bool:
    """Whether some run of `n` words comes back in the text (a small model looping)."""
    words = text.lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def _strict_support_loss(comparisons: dict) -> int | None:
    """Splits on which smollm2 (llama.cpp) under --strict has a significantly lower
    support rate than smollm2-torch; None when either was not run."""
    found, losses = False, 0
    for key, rows in comparisons.items():
        if not key.endswith("/strict"):
            continue
        for c in rows:
            if c["metric"] != "support_rate" or {c["a"], c["b"]} != {"smollm2", "smollm2-torch"}:
                continue
            found = True
            # delta is b - a
            llama_minus_torch = c["delta"] if c["b"] == "smollm2" else -c["delta"]
            losses += int(c["significant"] and llama_minus_torch < 0)
    return losses if found else None


if __name__ == "__main__":
    main()
