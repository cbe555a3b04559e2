"""Fit and report the abstention model (generation/abstain.py).

Two labelled sets of answerable and unanswerable questions:
- the bundled corpus's corpus/answers.jsonl (written by us), split dev/test by a
  stable hash of the question id;
- the Debian FAQ set (zsh FAQ + gitfaq(7), `ragmini datasets build faq`), with
  its own dev/test split; nobody here wrote it.

The model is fitted on the dev parts of both (logistic regression on
standardised features, folded back into plain coefficients), the threshold is
the one with the best balanced accuracy on dev, and everything is reported on
the test parts, next to the top-1 dense score alone.

    .venv/bin/python bench/calibrate_abstain.py [--faq data/faq] [--out bench/abstain_calibration.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from core.errors import QueryError  # noqa: E402
from eval.answers import split_of  # noqa: E402
from generation.abstain import FEATURES, evidence  # noqa: E402


def bundled_questions() -> list[dict]:
    rows = [json.loads(line) for line in (REPO / "corpus" / "answers.jsonl").read_text().splitlines()
            if line.strip()]
    return [{"id": r["id"], "text": r["text"], "answerable": r["answer"] is not None,
             "split": split_of(r["id"]), "set": "bundled"} for r in rows]


def faq_questions(folder: Path) -> list[dict]:
    texts = {}
    for line in (folder / "queries.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            texts[row["_id"]] = row["text"]
    answers = {}
    for line in (folder / "answers.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            answers[row["_id"]] = row["answer"]
    out = []
    for split in ("dev", "test"):
        for qid in (folder / "questions" / f"{split}.txt").read_text().split():
            out.append({"id": qid, "text": texts[qid], "answerable": answers[qid] is not None,
                        "split": split, "set": "faq"})
    return out


def features_for(store, questions: list[dict]) -> np.ndarray:
    from retrieval.methods import open_searcher

    dense, lexical = open_searcher(store, "sbert"), open_searcher(store, "bm25")
    rows = []
    for q in questions:
        d = dense.search([q["text"]], 10)[0]
        try:
            lx = lexical.search([q["text"]], 10)[0]
        except QueryError:
            lx = []
        rows.append(evidence(q["text"], d, lx, dense.embedder.embed).vector())
    return np.asarray(rows)


def build_store(path: Path, inputs: list[Path]):
    from ingest.store import Store
    from retrieval.indexing import ingest_and_index

    store = Store.open(path, create=True)
    ingest_and_index(store, inputs, ["sbert", "bm25"], progress=False)
    return store


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    tpr = (pred[y == 1] == 1).mean() if (y == 1).any() else 0.0
    tnr = (pred[y == 0] == 0).mean() if (y == 0).any() else 0.0
    return float((tpr + tnr) / 2)


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser()
    parser.add_argument("--faq", type=Path, default=REPO / "data" / "faq")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "abstain_calibration.json")
    args = parser.parse_args()
    if not (args.faq / "answers.jsonl").is_file():
        from eval.faqs import build

        build(args.faq, progress=True)
    tmp = Path(tempfile.mkdtemp(prefix="ragmini-abstain-"))
    bundled = bundled_questions()
    faq = faq_questions(args.faq)
    with build_store(tmp / "bundled", [REPO / "corpus" / "docs"]) as store:
        xb = features_for(store, bundled)
    with build_store(tmp / "faq", [args.faq / "corpus.jsonl"]) as store:
        xf = features_for(store, faq)
    questions = bundled + faq
    x = np.vstack([xb, xf])
    y = np.array([int(q["answerable"]) for q in questions])
    dev = np.array([q["split"] == "dev" for q in questions])

    mean, std = x[dev].mean(axis=0), x[dev].std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0).fit((x[dev] - mean) / std, y[dev])
    coef = model.coef_[0] / std
    intercept = float(model.intercept_[0] - (model.coef_[0] * mean / std).sum())

    def prob(rows: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(rows @ coef + intercept)))

    # Each set counts equally: the pooled dev split is mostly the bundled corpus.
    sets = np.array([q["set"] for q in questions])

    def dev_score(t: float) -> float:
        return float(np.mean([balanced_accuracy(y[dev & (sets == s)], prob(x[dev & (sets == s)]) >= t)
                              for s in ("bundled", "faq")]))

    candidates = np.unique(np.round(prob(x[dev]), 3))
    threshold = float(max(candidates, key=lambda t: (dev_score(t), -abs(t - 0.5))))
    report: dict = {"features": list(FEATURES), "coefficients": [round(float(c), 4) for c in coef],
                    "intercept": round(intercept, 4), "threshold": threshold, "sets": {}}
    for name in ("bundled", "faq", "all"):
        for split in ("dev", "test"):
            mask = np.array([(name == "all" or q["set"] == name) and q["split"] == split
                             for q in questions])
            ys, xs = y[mask], x[mask]
            p = prob(xs)
            pred = p >= threshold
            entry = {
                "questions": int(mask.sum()), "unanswerable": int((ys == 0).sum()),
                "auc_top1": round(float(roc_auc_score(ys, xs[:, 0])), 4),
                "auc_model": round(float(roc_auc_score(ys, p)), 4),
                "auc_by_feature": {f: round(float(roc_auc_score(ys, xs[:, i])), 4)
                                   for i, f in enumerate(FEATURES)},
                "balanced_accuracy": round(balanced_accuracy(ys, pred), 4),
                "abstain_precision": round(float((ys[~pred] == 0).mean()) if (~pred).any() else 0.0, 4),
                "abstain_recall": round(float((~pred[ys == 0]).mean()), 4),
                "confusion": {"answerable_answered": int((pred & (ys == 1)).sum()),
                              "answerable_abstained": int((~pred & (ys == 1)).sum()),
                              "unanswerable_answered": int((pred & (ys == 0)).sum()),
                              "unanswerable_abstained": int((~pred & (ys == 0)).sum())},
            }
            report["sets"][f"{name}/{split}"] = entry
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"COEFFICIENTS = {tuple(report['coefficients'])}")
    print(f"INTERCEPT = {report['intercept']}")
    print(f"THRESHOLD = {threshold}")
    print(f"{'set':<14}{'n':>5}{'unans':>7}{'AUC top1':>10}{'AUC model':>11}{'bal.acc':>9}")
    for key, e in report["sets"].items():
        print(f"{key:<14}{e['questions']:>5}{e['unanswerable']:>7}{e['auc_top1']:>10.3f}"
              f"{e['auc_model']:>11.3f}{e['balanced_accuracy']:>9.3f}")



if __name__ == "__main__":
    main()
