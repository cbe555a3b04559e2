"""Choose and calibrate the sentence-support score: writes the fitted model to
generation/support_model.json (which generation.support reads) and the report to
bench/support_calibration.json.

    python -m bench.calibrate_support                 # fit, write both, report
    python -m bench.calibrate_support --report-only   # fit and report; the model file stays

Scores every pair of eval/data/support_pairs.jsonl (build it with
eval/support_pairs.py) with each candidate score, chooses the score by its
cross-validated ROC AUC on the calibration part (5 folds grouped by document),
fits the logistic coefficients and picks the thresholds on the calibration
part, and only then reports on the held-back part: ROC AUC of every candidate,
the confusion table at the chosen thresholds, and accuracy per kind of pair.
The coefficients (rounded to 3 decimals) and thresholds go to the model file, so
a re-calibration is this command, not an edit; the held-back report is then made
with generation.support reading that file, as users get it. It also times
score_answer on a 3-sentence answer against 3 sources.

A candidate's score for a pair is its best value over the units of the source
passage (its sentences, or sentences and windows of two adjacent sentences).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

if not __package__:  # `python bench/calibrate_support.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

from bench.common import BENCH, REPO  # noqa: E402
from generation import support  # noqa: E402

PAIRS = REPO / "eval" / "data" / "support_pairs.jsonl"
OUT = BENCH / "support_calibration.json"
MODEL = support.MODEL_FILE
KINDS = ("copy", "paraphrase", "other_doc", "invented", "contradiction")
PRECISION_TARGET = 0.9  # "supported" should be right at least 9 times in 10 on calibration
LR_C = 1.0


def load_pairs(path: Path = PAIRS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class CachedEmbed:
    """embed() with a cache: every distinct text goes through the model once."""

    def __init__(self, embed):
        self._embed = embed
        self.vectors: dict[str, np.ndarray] = {}

    def warm(self, texts) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.vectors.update(zip(missing, self._embed(missing)))

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.warm(texts)
        return np.stack([self.vectors[t] for t in texts])


def pair_table(pairs: list[dict], embed: CachedEmbed) -> list[dict]:
    """Per pair: the feature rows of every unit (sentences and windows), and which are windows."""
    prepared = []
    for p in pairs:
        claim = support.strip_citations(p["sentence"])
        units = support.source_units([(1, p["source"])], windows=True)
        prepared.append((claim, units))
    embed.warm([t for claim, units in prepared for t in [claim] + [u.text for u in units]])
    rows = []
    for claim, units in prepared:
        vectors = np.stack([embed.vectors[u.text] for u in units])
        features = support.unit_features(claim, embed.vectors[claim], units, vectors)
        negated = support._analyse(claim).negated
        negation = np.array([[float(negated != u.info.negated)] for u in units])
        rows.append({"features": np.hstack([features, negation]),
                     "window": np.array([u.window for u in units])})
    return rows


# Columns of pair_table features: the runtime FEATURES, then negation mismatch.
COS, LEX, SPEC, NEG = 0, 1, 2, 3


def best(row: dict, fn, windows: bool) -> float:
    mask = np.ones(len(row["window"]), bool) if windows else ~row["window"]
    return float(np.max(fn(row["features"][mask])))


def selected(row: dict, cols: list[int], windows: bool) -> np.ndarray:
    """The feature row, over `cols`, of the unit a fit learns from: the best by mean(cosine, lexical)."""
    mask = np.ones(len(row["window"]), bool) if windows else ~row["window"]
    f = row["features"][mask]
    return f[int(np.argmax((f[:, COS] + f[:, LEX]) / 2))][cols]


def fit_logistic(rows: list[dict], y: np.ndarray, cols: list[int], windows: bool):
    from sklearn.linear_model import LogisticRegression

    X = np.array([selected(r, cols, windows) for r in rows])
    model = LogisticRegression(C=LR_C, class_weight="balanced").fit(X, y)
    return [float(c) for c in model.coef_[0]], float(model.intercept_[0])


def logistic_best(row: dict, cols: list[int], windows: bool, coef, intercept) -> float:
    return best(row, lambda f: support.logistic_score(f[:, cols], coef, intercept), windows)


CANDIDATES = {
    # name: (kind, columns or function, windows)
    "cosine": ("plain", lambda f: f[:, COS], False),
    "cosine_window2": ("plain", lambda f: f[:, COS], True),
    "lexical": ("plain", lambda f: f[:, LEX], False),
    "lexical_window2": ("plain", lambda f: f[:, LEX], True),
    "mean_cosine_lexical": ("plain", lambda f: (f[:, COS] + f[:, LEX]) / 2, False),
    "logistic_cos_lex": ("logistic", [COS, LEX], False),
    "logistic_cos_lex_specific": ("logistic", [COS, LEX, SPEC], False),
    "logistic_cos_lex_specific_window2": ("logistic", [COS, LEX, SPEC], True),
    "logistic_cos_lex_specific_negation": ("logistic", [COS, LEX, SPEC, NEG], False),
}
CHOSEN_SHAPE = "logistic_cos_lex_specific"  # what generation.support computes


def candidate_scores(name: str, rows: list[dict], y: np.ndarray, train: np.ndarray,
                     groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """(scores of every pair from a fit on `train`, out-of-fold scores on `train`, fit)."""
    from sklearn.model_selection import GroupKFold

    kind, spec, windows = CANDIDATES[name]
    if kind == "plain":
        scores = np.array([best(r, spec, windows) for r in rows])
        return scores, scores, {}
    idx = np.where(train)[0]
    coef, intercept = fit_logistic([rows[i] for i in idx], y[idx], spec, windows)
    scores = np.array([logistic_best(r, spec, windows, coef, intercept) for r in rows])
    oof = scores.copy()
    for tr, te in GroupKFold(n_splits=5).split(idx, groups=groups[idx]):
        c, b = fit_logistic([rows[i] for i in idx[tr]], y[idx[tr]], spec, windows)
        for i in idx[te]:
            oof[i] = logistic_best(rows[i], spec, windows, c, b)
    return scores, oof, {"coefficients": coef, "intercept": intercept,
                         "features": [["cosine", "lexical", "specific_missing", "negation_mismatch"][c]
                                      for c in spec]}


def choose_thresholds(scores: np.ndarray, y: np.ndarray) -> dict:
    """supported_at: the lowest score at which precision of "supported" reaches the
    target; weak_at: the score maximising Youden's J (capped at supported_at)."""
    from sklearn.metrics import roc_curve

    order = np.unique(scores)
    supported_at = None
    for t in order:
        picked = scores >= t
        if picked.sum() and y[picked].mean() >= PRECISION_TARGET:
            supported_at = float(t)
            break
    fpr, tpr, thr = roc_curve(y, scores)
    j = tpr - fpr
    youden = float(thr[int(np.argmax(j))])
    weak_at = min(youden, supported_at)
    picked = scores >= supported_at
    return {
        "weak_at": round(weak_at, 3), "supported_at": round(supported_at, 3),
        "youden_threshold": round(youden, 4),
        "calibration_precision_supported": round(float(y[picked].mean()), 4),
        "calibration_recall_supported": round(float(picked[y == 1].mean()), 4),
        "calibration_positives_unsupported": round(float((scores[y == 1] < weak_at).mean()), 4),
        "calibration_negatives_supported": round(float(picked[y == 0].mean()), 4),
    }


def labels(scores: np.ndarray, thresholds: tuple[float, float]) -> list[str]:
    return [support.label_for(float(s), thresholds) for s in scores]


def time_answer(embed, repeats: int = 20) -> dict:
    """score_answer on a 3-sentence answer against 3 sources (bundled corpus windows)."""
    from ingest.load import load_paths

    docs = {d.doc_id: d.text for d in load_paths([REPO / "corpus" / "docs"]).documents}
    sources = [(1, docs["bm25.md"]), (2, docs["tf-idf.txt"]), (3, docs["hybrid-search.html"])]
    answer = ("BM25 is the classic ranking function of lexical search [1]. Its term frequency part "
              "saturates, controlled by k1 [1]. Reciprocal rank fusion merges BM25 with dense results [3].")
    support.score_answer(answer, sources, embed)  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        support.score_answer(answer, sources, embed)
        times.append(time.perf_counter() - t0)
    n_units = len(support.source_units(sources))
    return {"median_ms": round(statistics.median(times) * 1000, 1),
            "min_ms": round(min(times) * 1000, 1), "repeats": repeats,
            "texts_embedded": 3 + n_units, "source_words": sum(len(t.split()) for _, t in sources)}


def model_file(fit: dict, thresholds: dict, encoder: str, n_cal: int, n_docs: int) -> dict:
    """The body of generation/support_model.json for a fit of CHOSEN_SHAPE."""
    return {
        "score": CHOSEN_SHAPE,
        "features": list(support.FEATURES),
        "coefficients": [round(c, 3) for c in fit["coefficients"]],
        "intercept": round(fit["intercept"], 3),
        "thresholds": {"weak_at": thresholds["weak_at"],
                       "supported_at": thresholds["supported_at"]},
        "fitted_by": "python -m bench.calibrate_support",
        "fitted_on": f"eval/data/support_pairs.jsonl, calibration part ({n_cal} pairs from "
                     f"{n_docs} documents)",
        "encoder": encoder,
    }


def write_json(path: Path, body: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--out", type=Path, default=OUT, help="the report (JSON)")
    parser.add_argument("--model", type=Path, default=MODEL,
                        help="the model file generation.support reads")
    parser.add_argument("--report-only", action="store_true",
                        help="leave the model file as it is; exit 1 if it differs from the fit")
    args = parser.parse_args(argv)

    from sklearn.metrics import roc_auc_score

    from retrieval.sbert import SbertEmbedder

    pairs = load_pairs(args.pairs)
    y = np.array([p["label"] for p in pairs])
    test = np.array([p["part"] == "test" for p in pairs])
    cal = ~test
    groups = np.array([p["doc_id"] for p in pairs])
    kinds = np.array([p["kind"] for p in pairs])

    model = SbertEmbedder.packaged()
    embed = CachedEmbed(model.embed)
    t0 = time.perf_counter()
    rows = pair_table(pairs, embed)
    print(f"{len(pairs)} pairs ({cal.sum()} calibration, {test.sum()} held back), "
          f"{len(embed.vectors)} texts embedded in {time.perf_counter() - t0:.1f} s\n")

    results: dict[str, dict] = {}
    all_scores: dict[str, np.ndarray] = {}
    for name in CANDIDATES:
        scores, oof, fit = candidate_scores(name, rows, y, cal, groups)
        all_scores[name] = scores
        results[name] = {
            "calibration_auc_cv": round(float(roc_auc_score(y[cal], oof[cal])), 4),
            "test_auc": round(float(roc_auc_score(y[test], scores[test])), 4),
            **fit,
        }
    chosen = max(CANDIDATES, key=lambda n: (results[n]["calibration_auc_cv"], -len(n)))

    print(f"{'candidate score':<36} {'cal AUC (cv)':>12} {'held-back AUC':>14}")
    for name, r in results.items():
        mark = "  <- chosen" if name == chosen else ""
        print(f"{name:<36} {r['calibration_auc_cv']:>12.3f} {r['test_auc']:>14.3f}{mark}")

    # The model file must hold the fit of the score generation.support computes.
    fit = results[CHOSEN_SHAPE]
    scores = all_scores[CHOSEN_SHAPE]
    thresholds = choose_thresholds(scores[cal], y[cal])
    pair = (thresholds["weak_at"], thresholds["supported_at"])
    fitted = model_file(fit, thresholds, model.model, int(cal.sum()),
                        len({p["doc_id"] for p in pairs if p["part"] != "test"}))
    committed = support.load_model(args.model)
    in_sync = (np.allclose(committed["coefficients"], fit["coefficients"], atol=5e-3)
               and abs(committed["intercept"] - fit["intercept"]) < 5e-3
               and committed["thresholds"] == fitted["thresholds"])
    print(f"\nscore used by generation.support: {CHOSEN_SHAPE} "
          f"(best by calibration AUC: {chosen})")
    print("  coefficients " + ", ".join(f"{n}={c:+.3f}" for n, c in zip(fit["features"], fit["coefficients"]))
          + f", intercept={fit['intercept']:+.3f}")
    print(f"  thresholds (calibration): weak_at={pair[0]}, supported_at={pair[1]} "
          f"(precision {thresholds['calibration_precision_supported']:.2f}, "
          f"recall {thresholds['calibration_recall_supported']:.2f}; Youden J at "
          f"{thresholds['youden_threshold']:.3f})")
    print(f"  {args.model.name} as it was {'matches' if in_sync else 'DIFFERS FROM'} the fit "
          f"(file: {committed['coefficients']}, {committed['intercept']}, "
          f"{committed['thresholds']})")
    if not args.report_only:
        write_json(args.model, fitted)
        print(f"  wrote {args.model}")
        if args.model.resolve() == support.MODEL_FILE.resolve():
            # The module read its constants (and bound them as defaults) at import;
            # the held-back report below must score with what users now get.
            importlib.reload(support)
            in_sync = True
    module_fit = {"coefficients": list(support.COEFFICIENTS), "intercept": support.INTERCEPT}

    # End to end on held-back pairs with generation.support as committed.
    t0 = time.perf_counter()
    runtime = np.array([support.score_answer(pairs[i]["sentence"], [(1, pairs[i]["source"])], embed)[0].support.score
                        for i in np.where(test)[0]])
    runtime_auc = float(roc_auc_score(y[test], runtime))
    runtime_labels = [support.label_for(s) for s in runtime]
    print(f"  score_answer as committed: held-back AUC {runtime_auc:.3f} "
          f"({time.perf_counter() - t0:.1f} s for {test.sum()} pairs, vectors cached)")

    # Held-back report at the module's thresholds (the ones users get).
    tl = np.array(runtime_labels)
    yt, kt = y[test], kinds[test]
    confusion = {str(lab): {name: int(((yt == lab) & (tl == name)).sum()) for name in support.LABELS}
                 for lab in (1, 0)}
    print("\nheld-back confusion (rows: true label; columns: label given)")
    print(f"{'':<14}" + "".join(f"{n:>13}" for n in support.LABELS))
    for lab, name in ((1, "supported (1)"), (0, "unsupported (0)")):
        print(f"{name:<14}" + "".join(f"{confusion[str(lab)][n]:>13}" for n in support.LABELS))

    per_kind = {}
    print(f"\n{'kind':<22}{'n':>4}{'correct':>9}{'supported':>11}{'weak':>7}{'unsupported':>13}")
    groups_shown = [(k, kt == k) for k in KINDS]
    styles = np.array([pairs[i].get("style", "") for i in np.where(test)[0]])
    groups_shown.append(("  of which smollm2", styles == "smollm2"))
    for name, mask in groups_shown:
        if not mask.any():
            continue
        label = 1 if name in ("copy", "paraphrase") else 0  # "  of which smollm2" is invented
        got = tl[mask]
        correct = (got == "supported") if label == 1 else (got != "supported")
        counts = {n: int((got == n).sum()) for n in support.LABELS}
        key = "invented_smollm2_style" if "smollm2" in name else name
        per_kind[key] = {"n": int(mask.sum()), "accuracy": round(float(correct.mean()), 4), **counts}
        print(f"{name:<22}{mask.sum():>4}{correct.mean():>9.2f}{counts['supported']:>11}"
              f"{counts['weak']:>7}{counts['unsupported']:>13}")
    print("  (correct: label 1 marked supported; label 0 marked weak or unsupported)")

    timing = time_answer(model.embed)
    print(f"\nscore_answer, 3-sentence answer vs 3 sources ({timing['texts_embedded']} texts, "
          f"{timing['source_words']} source words): median {timing['median_ms']} ms of {timing['repeats']}")

    report = {
        "pairs": {"total": len(pairs), "calibration": int(cal.sum()), "test": int(test.sum()),
                  "test_documents": sorted({p["doc_id"] for p in pairs if p["part"] == "test"})},
        "candidates": results,
        "best_by_calibration_auc": chosen,
        "chosen_score": CHOSEN_SHAPE,
        "thresholds": thresholds,
        "module": {"coefficients": module_fit["coefficients"], "intercept": module_fit["intercept"],
                   "thresholds": list(support.DEFAULT_THRESHOLDS), "matches_fit": bool(in_sync),
                   "test_auc": round(runtime_auc, 4)},
        "test_confusion": confusion,
        "test_per_kind": per_kind,
        "timing_3_sentences_3_sources": timing,
        "encoder": model.model,
    }
    write_json(args.out, report)
    print(f"\nwrote {args.out}")
    return 0 if in_sync else 1


if __name__ == "__main__":
    raise SystemExit(main())
