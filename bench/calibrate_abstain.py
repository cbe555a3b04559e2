"""Fit and report the abstention model (generation/abstain.py); writes the model file it loads.

Two labelled sets of answerable and unanswerable questions:
- the bundled corpus's corpus/answers.jsonl (written by us), split dev/test by a
  stable hash of the question id;
- the Debian FAQ set (zsh FAQ + gitfaq(7), `ragmini datasets build faq`), with
  its own dev/test split; nobody here wrote it.

Every signal of generation/abstain.py is computed for every question (dense and
BM25 rankings of a store of each corpus, and the extractive answer). On the dev
parts only, each candidate feature set gets: logistic regression on
standardised features (folded back into plain coefficients, Platt-rescaled), its
regularisation C chosen by repeated 5-fold cross-validation, and a threshold on
the out-of-fold probabilities: the best mean of the per-set balanced accuracies
among thresholds that abstain on at most MAX_ANSWERABLE_ABSTAIN of the answerable
questions of either set. The candidate with the best out-of-fold dev balanced
accuracy is shipped: generation/abstain_model.json (what ask loads). The top-1
dense score alone goes through the same procedure and is reported beside it on
every split; the test parts are only reported.

    python -m bench.calibrate_abstain [--faq data/faq] [--out bench/abstain_calibration.json]
"""


from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.common import REPO
from core.errors import QueryError
from eval.answers import split_of

SETS = ("bundled", "faq")
C_GRID = (0.01, 0.1, 1.0)
CV_FOLDS, CV_REPEATS = 5, 10
MAX_ANSWERABLE_ABSTAIN = 0.15
# Feature sets tried, on dev only: the retrieval-only model shipped before, with the
# lexical ranking, with the answer-side signals, and the two together.
CANDIDATES = {
    "top1": ("top",),
    "retrieval": ("sentence", "coverage", "focus"),
    "retrieval+lexical": ("sentence", "coverage", "bm25_per_word"),
    "answer": ("answer_relevance", "answer_coverage", "question_support", "document"),
    "answer+lexical": ("answer_relevance", "question_support", "document", "bm25_per_word",
                       "agreement"),
    "all": ("sentence", "coverage", "bm25_per_word", "answer_relevance", "question_support",
            "document", "agreement"),
}


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


def features_for(store, questions: list[dict]) -> list[dict[str, float]]:
    from generation.abstain import evidence
    from retrieval.methods import open_searcher

    dense, lexical = open_searcher(store, "sbert"), open_searcher(store, "bm25")
    out = []
    for q in questions:
        d = dense.search([q["text"]], 10)[0]
        try:
            lx = lexical.search([q["text"]], 10)[0]
        except QueryError:
            lx = []
        out.append(evidence(q["text"], d, lx, dense.embedder.embed).values)
    return out


def build_store(path: Path, inputs: list[Path]):
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    store = Store.open(path, create=True)
    ingest_and_index(store, inputs, ["sbert", "bm25"], progress=False)
    return store


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    tpr = (pred[y == 1] == 1).mean() if (y == 1).any() else 0.0
    tnr = (pred[y == 0] == 0).mean() if (y == 0).any() else 0.0
    return float((tpr + tnr) / 2)


def fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised x, then Platt-rescaled on the same rows;
    coefficients and intercept on raw x.

    A small C (strong shrinkage) picks a robust direction but squeezes every
    probability towards the base rate; the 2-parameter rescaling undoes the squeeze,
    so the score ask reports reads as a probability. It does not change the ranking.
    """
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=c).fit((x - mean) / std, y)
    coef = model.coef_[0] / std
    intercept = float(model.intercept_[0] - (model.coef_[0] * mean / std).sum())
    platt = LogisticRegression(C=1e4).fit((x @ coef + intercept)[:, None], y)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    return coef * a, intercept * a + b


def prob(x: np.ndarray, model: tuple[np.ndarray, float]) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ model[0] + model[1])))


def per_set_auc(y: np.ndarray, score: np.ndarray, sets: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(np.mean([roc_auc_score(y[sets == s], score[sets == s]) for s in SETS]))


def out_of_fold(x: np.ndarray, y: np.ndarray, sets: np.ndarray, c: float) -> np.ndarray:
    """(CV_REPEATS, n) out-of-fold probabilities, folds stratified by label and set."""
    from sklearn.model_selection import StratifiedKFold

    strata = y * 2 + (sets == "faq")
    out = np.zeros((CV_REPEATS, len(y)))
    for r in range(CV_REPEATS):
        for train, held in StratifiedKFold(CV_FOLDS, shuffle=True, random_state=r).split(x, strata):
            out[r, held] = prob(x[held], fit(x[train], y[train], c))
    return out


def choose_threshold(p: np.ndarray, y: np.ndarray, sets: np.ndarray) -> tuple[float, float]:
    """(threshold, mean per-set balanced accuracy): the best threshold abstaining on at
    most MAX_ANSWERABLE_ABSTAIN of either set's answerable questions."""
    best = (0.0, -1.0)
    for t in np.unique(np.round(p, 3)):
        answered = p >= t
        if max(float((~answered[(y == 1) & (sets == s)]).mean()) for s in SETS) \
                > MAX_ANSWERABLE_ABSTAIN:
            continue
        score = float(np.mean([balanced_accuracy(y[sets == s], answered[sets == s])
                               for s in SETS]))
        if score > best[1] + 1e-12:
            best = (float(t), score)
    return best


def calibrate(x: np.ndarray, y: np.ndarray, sets: np.ndarray) -> dict:
    """C by cross-validation, the model on all of x, the threshold on out-of-fold probabilities."""
    cv = {c: out_of_fold(x, y, sets, c) for c in C_GRID}
    cv_auc = {c: float(np.mean([per_set_auc(y, p, sets) for p in cv[c]])) for c in C_GRID}
    c = max(C_GRID, key=lambda k: cv_auc[k])
    threshold, score = choose_threshold(cv[c].mean(axis=0), y, sets)
    return {"model": fit(x, y, c), "C": c, "cv_auc": round(cv_auc[c], 4),
            "threshold": threshold, "cv_balanced_accuracy": round(score, 4)}


def split_report(x: np.ndarray, y: np.ndarray, fitted: dict) -> dict:
    from sklearn.metrics import roc_auc_score

    p = prob(x, fitted["model"])
    answered = p >= fitted["threshold"]
    return {"auc": round(float(roc_auc_score(y, p)), 4),
            "balanced_accuracy": round(balanced_accuracy(y, answered), 4),
            "abstain_precision": round(float((y[~answered] == 0).mean())
                                       if (~answered).any() else 0.0, 4),
            "abstain_recall": round(float((~answered[y == 0]).mean()), 4),
            "answerable_abstained": round(float((~answered[y == 1]).mean()), 4),
            "confusion": {"answerable_answered": int((answered & (y == 1)).sum()),
                          "answerable_abstained": int((~answered & (y == 1)).sum()),
                          "unanswerable_answered": int((answered & (y == 0)).sum()),
                          "unanswerable_abstained": int((~answered & (y == 0)).sum())}}


def main() -> None:
    from sklearn.metrics import roc_auc_score

    from generation.abstain import MODEL_FILE, SIGNALS

    parser = argparse.ArgumentParser()
    parser.add_argument("--faq", type=Path, default=REPO / "data" / "faq")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "abstain_calibration.json")
    parser.add_argument("--model", type=Path, default=MODEL_FILE)
    args = parser.parse_args()
    if not (args.faq / "answers.jsonl").is_file():
        from eval.faqs import build

        build(args.faq, progress=True)
    tmp = Path(tempfile.mkdtemp(prefix="ragmini-abstain-"))
    bundled, faq = bundled_questions(), faq_questions(args.faq)
    with build_store(tmp / "bundled", [REPO / "corpus" / "docs"]) as store:
        signals = features_for(store, bundled)
    with build_store(tmp / "faq", [args.faq / "corpus.jsonl"]) as store:
        signals += features_for(store, faq)
    questions = bundled + faq
    y = np.array([int(q["answerable"]) for q in questions])
    sets = np.array([q["set"] for q in questions])
    split = np.array([q["split"] for q in questions])
    dev = split == "dev"

    def matrix(features) -> np.ndarray:
        return np.array([[row[f] for f in features] for row in signals])

    fitted = {}
    for name, features in CANDIDATES.items():
        fitted[name] = calibrate(matrix(features)[dev], y[dev], sets[dev])
    base = fitted.pop("top1")
    chosen = max(fitted, key=lambda n: fitted[n]["cv_balanced_accuracy"])
    shipped = fitted[chosen]
    features = CANDIDATES[chosen]
    coef, intercept = shipped["model"]
    model = {"features": list(features), "coefficients": [round(float(c), 6) for c in coef],
             "intercept": round(float(intercept), 6), "threshold": shipped["threshold"],
             "fitted_on": "dev", "C": shipped["C"],
             "max_answerable_abstain": MAX_ANSWERABLE_ABSTAIN,
             "written_by": "python -m bench.calibrate_abstain"}
    report: dict = {
        "fitted_on": "dev", "chosen": chosen, **{k: model[k] for k in (
            "features", "coefficients", "intercept", "threshold", "C")},
        "max_answerable_abstain": MAX_ANSWERABLE_ABSTAIN,
        "dev_cv": {"auc": shipped["cv_auc"], "balanced_accuracy": shipped["cv_balanced_accuracy"]},
        "candidates": {n: {"features": list(CANDIDATES[n]), "C": f["C"], "dev_cv_auc": f["cv_auc"],
                           "dev_cv_balanced_accuracy": f["cv_balanced_accuracy"]}
                       for n, f in {**fitted, "top1": base}.items()},
        "top1_baseline": {"C": base["C"], "threshold": base["threshold"]},
        "sets": {}, "signal_auc": {},
    }
    for name in ("bundled", "faq", "all"):
        for part in ("dev", "test"):
            mask = ((sets == name) | (name == "all")) & (split == part)
            report["sets"][f"{name}/{part}"] = {
                "questions": int(mask.sum()), "unanswerable": int((y[mask] == 0).sum()),
                "model": split_report(matrix(features)[mask], y[mask], shipped),
                "top1": split_report(matrix(("top",))[mask], y[mask], base)}
    for f in SIGNALS:
        report["signal_auc"][f] = {
            f"{s}/{part}": round(float(roc_auc_score(
                y[(sets == s) & (split == part)], matrix((f,))[(sets == s) & (split == part), 0])), 4)
            for s in SETS for part in ("dev", "test")}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    tmp_model = args.model.with_suffix(".json.tmp")
    tmp_model.write_text(json.dumps(model, indent=2) + "\n")
    tmp_model.replace(args.model)

    print(f"chosen on dev: {chosen} {list(features)} (C = {shipped['C']}, threshold "
          f"{shipped['threshold']}, dev CV balanced accuracy {shipped['cv_balanced_accuracy']})")
    for n, f in report["candidates"].items():
        print(f"  candidate {n:<22} dev CV AUC {f['dev_cv_auc']:.3f}  balanced accuracy "
              f"{f['dev_cv_balanced_accuracy']:.3f}")
    print(f"{'set':<14}{'n':>5}{'unans':>7}{'AUC top1':>10}{'AUC model':>11}{'BA top1':>9}"
          f"{'BA model':>10}{'ans.abst top1':>15}{'ans.abst model':>16}")
    for key, e in report["sets"].items():
        print(f"{key:<14}{e['questions']:>5}{e['unanswerable']:>7}{e['top1']['auc']:>10.3f}"
              f"{e['model']['auc']:>11.3f}{e['top1']['balanced_accuracy']:>9.3f}"
              f"{e['model']['balanced_accuracy']:>10.3f}"
              f"{e['top1']['answerable_abstained']:>15.3f}{e['model']['answerable_abstained']:>16.3f}")
    print(f"-> {args.model}, {args.out}")


if __name__ == "__main__":
    main()
