"""Write an evaluation's report: Markdown, metrics JSON, TREC run files, recall@k plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from eval.harness import EvalResult, disagreements
from eval.queries import QuerySet

CURVE_KS = (1, 2, 3, 5, 10, 20, 50, 100)


def recall_curve(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]],
                 ks: tuple[int, ...]) -> np.ndarray:
    """(n_queries, len(ks)) recall@k per query, straight from a document run."""
    out = np.zeros((len(qrels), len(ks)))
    for i, (qid, rel) in enumerate(sorted(qrels.items())):
        ranked = list(run.get(qid, {}))
        relevant = {d for d, g in rel.items() if g > 0}
        for j, k in enumerate(ks):
            out[i, j] = len(relevant.intersection(ranked[:k])) / len(relevant)
    return out


def plot_recall(result: EvalResult, query_set: QuerySet, path: Path, seed: int = 0,
                resamples: int = 2000) -> Path:
    from eval.plots import pyplot

    plt = pyplot()
    qrels = {q: query_set.qrels[q] for q in next(iter(result.methods.values())).per_query}
    n_docs = max((len(r) for m in result.methods.values() for r in m.run.values()), default=1)
    ks = tuple(k for k in CURVE_KS if k <= max(n_docs, 1)) or (1,)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(qrels), size=(resamples, len(qrels)))
    for method, r in result.methods.items():
        per_query = recall_curve(r.run, qrels, ks)
        mean = per_query.mean(axis=0)
        boot = per_query[idx].mean(axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
        line, = ax.plot(ks, mean, marker="o", label=method)
        ax.fill_between(ks, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k (documents)")
    ax.set_ylabel("recall@k")
    title = f"recall@k on {result.dataset or 'the store'}"
    title += f" ({result.split}, {result.n_queries} queries)" if result.split else \
        f" ({result.n_queries} queries)"
    ax.set_title(title + "\nbands: 95% bootstrap intervals of each mean, queries resampled")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_trec_run(run: dict[str, dict[str, float]], path: Path, tag: str) -> None:
    with open(path, "w") as handle:
        for qid in sorted(run):
            for rank, (doc, score) in enumerate(run[qid].items(), 1):
                handle.write(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}\n")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def write_report(result: EvalResult, query_set: QuerySet, directory: Path,
                 oov=None) -> list[Path]:
    """Write report.md, metrics.json, run.<method>.trec and recall_at_k.png into
    `directory`. `oov(text) -> [words]`, if given, marks query words GloVe lacks."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    metrics_path = directory / "metrics.json"
    metrics_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    written.append(metrics_path)
    for method, r in result.methods.items():
        path = directory / f"run.{_safe(method)}.trec"
        write_trec_run(r.run, path, f"ragmini-{_safe(method)}")
        written.append(path)
    plot = plot_recall(result, query_set, directory / "recall_at_k.png")
    written.append(plot)
    report = directory / "report.md"
    report.write_text(render_markdown(result, query_set, oov))
    written.append(report)
    return written


def render_markdown(result: EvalResult, query_set: QuerySet, oov=None) -> str:
    methods = list(result.methods)
    names = list(next(iter(result.methods.values())).metrics)
    chunking = result.chunking or {}
    lines = [f"# Retrieval evaluation: {result.dataset or 'store'}"
             + (f" ({result.split})" if result.split else ""), ""]
    lines.append(f"{result.n_queries} queries with relevant documents"
                 + (f" ({result.n_dropped} without, left out)" if result.n_dropped else "")
                 + f"; chunks of {chunking.get('size', '?')} tokens, overlap "
                 f"{chunking.get('overlap', '?')}; a document ranks at its best chunk.")
    lines += ["", "| method | " + " | ".join(names) + " | p50 ms | p95 ms |",
              "|---|" + "---|" * (len(names) + 2)]
    for m, r in result.methods.items():
        lines.append(f"| {m} | " + " | ".join(f"{r.metrics[n]:.3f}" for n in names)
                     + f" | {r.latency_ms['p50']:.1f} | {r.latency_ms['p95']:.1f} |")
    for m, r in result.methods.items():
        if r.unanswerable:
            lines.append(f"\n{m}: {r.unanswerable} queries had nothing it could match "
                         "(no known word for GloVe, no corpus word for bm25); they score 0.")
    lines += ["", "![recall@k](recall_at_k.png)", ""]
    if result.comparisons:
        lines += ["## Which differences are real", "",
                  "Paired over queries: bootstrap 95% interval of the mean difference and a "
                  "randomization test, both with a fixed seed; p-values Holm-adjusted across the "
                  "pairs of each metric. *Significant* means adjusted p < 0.05 and an interval "
                  "that excludes 0.", "",
                  "| b - a | metric | delta | 95% CI | p | Holm p | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for c in result.comparisons:
            lines.append(f"| {c.b} - {c.a} | {c.metric} | {c.delta:+.3f} | "
                         f"[{c.ci95[0]:+.3f}, {c.ci95[1]:+.3f}] | {c.p_value:.4f} | "
                         f"{c.p_holm:.4f} | {'**significant**' if c.significant else 'not significant'} |")
        sig = [c for c in result.comparisons if c.significant]
        lines.append("")
        if sig:
            lines.append("In plain words: " + "; ".join(
                f"{c.b} {'beats' if c.delta > 0 else 'trails'} {c.a} on {c.metric} "
                f"({c.delta:+.3f})" for c in sig) + ". Every other difference could be chance.")
        else:
            lines.append("In plain words: no difference between these methods is significant.")
        lines.append("")
    from retrieval.methods import CONTRASTS, FIXED_VOCABULARY

    pairs = [(a, b) for a, b in CONTRASTS if a in methods and b in methods]
    for a, b in pairs:
        show_oov = oov is not None and bool(FIXED_VOCABULARY & {a, b})
        a_only, b_only, n_a, n_b = disagreements(result, query_set, a, b)
        lines += [f"## {a} vs {b}: where one finds it and the other does not", "",
                  f"A relevant document in the top 10 for {b} but not {a}: {n_b} queries; "
                  f"for {a} but not {b}: {n_a}.", ""]
        for title, rows, win in ((f"found by {b} only", b_only, b), (f"found by {a} only", a_only, a)):
            if not rows:
                continue
            lines += [f"**{title}**", "", "| query | relevant | rank by winner | loser's top document |"
                      + (" words GloVe lacks |" if show_oov else ""),
                      "|---|---|---|---|" + ("---|" if show_oov else "")]
            for d in rows:
                rank = d.rank_b if win == b else d.rank_a
                loser_top = d.top_a if win == b else d.top_b
                cells = [d.query.replace("|", "\\|"), ", ".join(d.relevant[:3]), str(rank),
                         loser_top]
                if show_oov:
                    cells.append(", ".join(oov(d.query)) or "none")
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["## Files", "", "`metrics.json` (everything above), `run.<method>.trec` (TREC run "
              "files, document level), `recall_at_k.png`.", ""]
    return "\n".join(lines)
