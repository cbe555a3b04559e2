"""The extractive answer against the one it replaced, and abstention end to end.

Generator alone (abstention off, every answerable question answered from the same
top-3 sbert sources): the shipped generation/extractive.py against the version of
commit BASELINE_COMMIT (read from git), on the FAQ set (`ragmini datasets build
faq`) and the bundled corpus/answers.jsonl, dev and test: support rate, answer
similarity, token F1, the share of answer sentences citing only documents other
than the relevant one, sentences per answer, with paired tests (eval/stats.py).
Then `eval answers` as users get it (abstention on) for the FAQ test split.
The constants of extractive.py were chosen on the dev splits of both sets
(the sum of the gains in similarity and token F1 over the baseline); test is reported.

    python -m bench.extractive [--faq data/faq]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import REPO, Target, temp_dir, write_results

BASELINE_COMMIT = "f9e628f"  # the extractive generator before issue 27
METRICS = ("support_rate", "answer_similarity", "token_f1", "other_document_share", "sentences")


def baseline_extract():
    """extract() of generation/extractive.py at BASELINE_COMMIT."""
    source = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:generation/extractive.py"],
                            cwd=REPO, check=True, capture_output=True, text=True).stdout
    with temp_dir() as folder:
        path = folder / "extractive_baseline.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("extractive_baseline", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["extractive_baseline"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return module.extract


def answer_rows(store, questions, encoder, extract_fn) -> dict[str, dict[str, float]]:
    """{qid: metrics} of the extractive generator on the answerable questions."""
    from eval.answers import _CITATION, token_f1
    from generation.answer import answer as answer_fn
    from generation.models import ExtractiveGenerator
    from retrieval.contract import search_one
    from retrieval.methods import open_searcher

    module = sys.modules["generation.answer"]
    shipped = module.extract
    module.extract = extract_fn
    try:
        searcher = open_searcher(store, "sbert", {"sbert": encoder})
        out = {}
        for q in questions:
            if q.reference is None:
                continue
            hits = search_one(searcher, q.text, 3)
            a = answer_fn(q.text, hits, ExtractiveGenerator(), embed=encoder.embed, strict=True)
            text = _CITATION.sub(" ", a.answer).strip()
            sim = 0.0
            if text:
                v = encoder.embed([text, q.reference])
                sim = float(v[0] @ v[1])
            by_n = {s.n: s.doc_id for s in a.sources}
            other = [bool(s.citations) and all(by_n.get(n) not in q.relevant for n in s.citations)
                     for s in a.sentences]
            out[q.qid] = {"support_rate": a.support_rate or 0.0, "answer_similarity": sim,
                          "token_f1": token_f1(a.answer, q.reference),
                          "other_document_share": float(np.mean(other)) if other else 0.0,
                          "sentences": float(len(a.sentences))}
        return out
    finally:
        module.extract = shipped


def main() -> None:
    from eval.answers import load_qa_dataset, load_question_file
    from eval.beir import dataset_store_dir
    from eval.runs import evaluate_answer_run
    from eval.stats import compare
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index
    from retrieval.methods import get_embedder

    parser = argparse.ArgumentParser()
    parser.add_argument("--faq", type=Path, default=REPO / "data" / "faq")
    args = parser.parse_args()
    baseline = baseline_extract()
    from generation.extractive import extract as shipped

    results: dict = {"baseline_commit": BASELINE_COMMIT, "generator_only": {}}
    config = ChunkConfig()
    with temp_dir() as folder:
        faq_store = Store.open(dataset_store_dir(args.faq, config.size, config.overlap),
                               create=True)
        ingest_and_index(faq_store, [args.faq / "corpus.jsonl"], ["sbert", "bm25"],
                         config=config, progress=False)
        bundled_store = Store.open(folder / "bundled", create=True)
        ingest_and_index(bundled_store, [REPO / "corpus" / "docs"], ["sbert", "bm25"],
                         config=config, progress=False)
        encoder = get_embedder("sbert", faq_store)
        for name, store, load in (
                ("faq", faq_store, lambda split: load_qa_dataset(args.faq, split)),
                ("bundled", bundled_store,
                 lambda split: load_question_file(REPO / "corpus" / "answers.jsonl", split))):
            for split in ("dev", "test"):
                questions = load(split)
                rows = {"baseline": answer_rows(store, questions, encoder, baseline),
                        "shipped": answer_rows(store, questions, encoder, shipped)}
                comparisons = compare(rows, METRICS, 10_000, 0)
                results["generator_only"][f"{name}/{split}"] = {
                    "questions": len(rows["shipped"]),
                    "means": {g: {m: round(float(np.mean([r[m] for r in per.values()])), 4)
                                  for m in METRICS} for g, per in rows.items()},
                    "comparisons": [c.to_dict() for c in comparisons]}
        bundled_store.close()
        faq_store.close()
    end_to_end = evaluate_answer_run(dataset=args.faq, generators=["extractive"], split="test",
                                     progress=False)
    results["end_to_end_faq_test"] = end_to_end.to_dict()
    faq = results["generator_only"]["faq/test"]
    sig = {c["metric"]: c for c in faq["comparisons"]}
    targets = [
        Target("FAQ test: support rate (abstention on)",
               end_to_end.generators["extractive"]["support_rate"], 0.95, ">="),
        Target("FAQ test: support rate (generator only)", faq["means"]["shipped"]["support_rate"],
               0.95, ">="),
        Target("FAQ test: answer similarity up on the baseline, significant (1 = yes)",
               float(sig["answer_similarity"]["significant"] and
                     sig["answer_similarity"]["delta"] > 0), 1, ">="),
        Target("FAQ test: token F1 up on the baseline, significant (1 = yes)",
               float(sig["token_f1"]["significant"] and sig["token_f1"]["delta"] > 0), 1, ">="),
        Target("FAQ test: other-document sentence share, shipped minus baseline",
               round(sig["other_document_share"]["delta"], 4), 0.0, "<="),
    ]
    path = write_results("extractive", results, targets)
    for key, body in results["generator_only"].items():
        print(f"{key} ({body['questions']} answerable questions, abstention off):")
        for g, m in body["means"].items():
            print(f"  {g:<9}" + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
        for c in body["comparisons"]:
            print(f"    {c['metric']}: {c['delta']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] "
                  f"p={c['p_value']:.4f}{' significant' if c['significant'] else ''}")
    print("FAQ test, abstention on:", results["end_to_end_faq_test"]["generators"])
    for t in targets:
        print(f"  {t.name}: {t.value} (goal {t.op} {t.goal}) {'met' if t.met else 'NOT met'}")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
