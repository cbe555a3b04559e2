"""Every evaluation run, recorded in the store's SQLite, so recall can be
watched as the corpus or the settings change."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from eval.harness import EvalResult
from ingest.store import Store

_TABLE = """CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ran_at TEXT NOT NULL,
    dataset TEXT NOT NULL,
    split TEXT NOT NULL,
    methods TEXT NOT NULL,
    chunking TEXT NOT NULL,
    n_queries INTEGER NOT NULL,
    store_generation INTEGER NOT NULL,
    metrics TEXT NOT NULL
)"""


def record_run(store: Store, result: EvalResult) -> int:
    with store.db.atomic():
        store.db.execute(_TABLE)
        cur = store.db.execute(
            "INSERT INTO eval_runs(ran_at, dataset, split, methods, chunking, n_queries, "
            "store_generation, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [datetime.now(timezone.utc).isoformat(timespec="seconds"), result.dataset,
             result.split, json.dumps(list(result.methods)),
             json.dumps(result.chunking or {}, sort_keys=True), result.n_queries,
             store.generation, json.dumps({m: r.metrics for m, r in result.methods.items()})],
        )
        return cur.lastrowid


def list_runs(store: Store, limit: int = 50) -> list[dict]:
    if "eval_runs" not in store.db.table_names():
        return []
    rows = store.db.execute(
        "SELECT id, ran_at, dataset, split, methods, chunking, n_queries, store_generation, "
        "metrics FROM eval_runs ORDER BY id DESC LIMIT ?", [limit]).fetchall()
    return [{"id": r[0], "ran_at": r[1], "dataset": r[2], "split": r[3],
             "methods": json.loads(r[4]), "chunking": json.loads(r[5]), "n_queries": r[6],
             "store_generation": r[7], "metrics": json.loads(r[8])} for r in rows]
