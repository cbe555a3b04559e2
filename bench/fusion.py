"""Choose the default hybrid across every dev set we have, not on one of them.

For each labelled set (the man-page dev split, the zsh/git FAQ dev split, the
bundled queries), every fusion setting (convex with minmax / tmm / zscore, and
weighted RRF, weights 0..1 in tenths on sbert) is scored on the mean of
recall@10, MRR@10 and nDCG@10. The default is the setting whose worst margin
over the better part alone, across the sets, is largest: robust rather than
best on average.

    python -m bench.fusion [--manpages data/manpages] [--faq data/faq]   # make bench-fusion
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # `python bench/fusion.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    FAQ,
    MANPAGES,
    QUERIES,
    write_results,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manpages", type=Path, default=MANPAGES)
    parser.add_argument("--faq", type=Path, default=FAQ)
    parser.add_argument("--store", type=Path, default=Path(".ragmini"),
                        help="A store of the bundled corpus (bm25 and sbert indexed).")
    parser.add_argument("--out", type=Path, default=BENCH / "fusion_results.json")
    args = parser.parse_args()

    from eval.beir import dataset_store_dir, load_beir
    from eval.queries import load_queries
    from eval.tuning import objective, tune_fusion
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    sets = []
    for dataset in (args.manpages, args.faq):
        if (dataset / "corpus.jsonl").exists():
            config = ChunkConfig()
            path = dataset_store_dir(dataset, config.size, config.overlap)
            with Store.open(path, create=True) as store:
                ingest_and_index(store, [dataset / "corpus.jsonl"], ["bm25", "sbert"],
                                 config=config, progress=True)
            sets.append((f"{dataset.name}/dev", path, load_beir(dataset, "dev")))
    if (args.store / "ragmini.db").exists():
        sets.append(("bundled", args.store, load_queries(QUERIES)))

    per_set = {}
    for label, path, queries in sets:
        with Store.open(path) as store:
            result = tune_fusion(store, queries, "hybrid", dataset=label,
                                 kinds=("convex", "rrf"), record=False)
        best_part = max(objective(m) for m in result.parts_metrics.values())
        per_set[label] = {"n_queries": result.n_queries, "parts": result.parts_metrics,
                          "best_part_objective": best_part,
                          "settings": {r.params.label(): {"objective": r.objective,
                                                          "margin": r.objective - best_part,
                                                          **r.metrics}
                                       for r in result.rows}}
        print(f"{label}: {result.n_queries} queries; parts "
              + ", ".join(f"{p} {objective(m):.3f}" for p, m in result.parts_metrics.items()))

    settings = list(next(iter(per_set.values()))["settings"])
    worst = {s: min(v["settings"][s]["margin"] for v in per_set.values()) for s in settings}
    mean = {s: sum(v["settings"][s]["margin"] for v in per_set.values()) / len(per_set)
            for s in settings}
    ranked = sorted(settings, key=lambda s: (-round(worst[s], 4), -mean[s]))
    print(f"{'setting':<26}" + "".join(f"{k:>16}" for k in per_set) + f"{'worst':>9}{'mean':>9}")
    for s in ranked[:15]:
        print(f"{s:<26}" + "".join(f"{per_set[k]['settings'][s]['margin']:>+16.4f}"
                                   for k in per_set)
              + f"{worst[s]:>+9.4f}{mean[s]:>+9.4f}")
    out = {"chosen": ranked[0], "worst_margin": worst, "mean_margin": mean, "sets": per_set}
    write_results("fusion", out, out=args.out)
    print(f"chosen: {ranked[0]} (worst margin {worst[ranked[0]]:+.4f}) -> {args.out}")


if __name__ == "__main__":
    main()
