"""The public API's evaluation records: retrieval runs, chunking sweeps, answer runs,
the run history and built datasets. Each `to_dict()` is the `--json` body of the
`ragmini eval ...` command of the same name; `to_records()` / `to_dataframe()` give
flat rows, and `write_report(folder)` the files `--report` writes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import RagminiError
from ragmini.api.records import PathLike

if TYPE_CHECKING:
    from eval.answers import AnswerEvalResult
    from eval.harness import EvalResult
    from eval.runs import EvalRun


def _dataframe(records: list[dict]):
    """A pandas DataFrame of `records`; pandas is optional."""
    try:
        import pandas
    except ImportError:
        raise RagminiError("to_dataframe() needs pandas, which ragmini does not require; "
                           "install it (`pip install pandas`) or use to_records()") from None
    return pandas.DataFrame.from_records(records)


@dataclass(frozen=True)
class EvalReport:
    """A retrieval evaluation: `eval --json`.

    `metrics[method]["recall@10"]` and so on; `comparisons` are the paired tests
    (`delta`, `ci95`, `p_holm`, `significant`). `to_records()` gives one flat row
    per method and `to_dataframe()` the same as a pandas DataFrame (if pandas is
    installed); `write_report(folder)` writes report.md, metrics.json, TREC runs
    and the recall@k plot, as `eval --report`.
    """

    run: EvalRun

    @property
    def result(self) -> EvalResult:
        return self.run.result

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return {m: dict(r.metrics) for m, r in self.result.methods.items()}

    @property
    def comparisons(self) -> list[dict]:
        return [c.to_dict() for c in self.result.comparisons]

    @property
    def n_queries(self) -> int:
        return self.result.n_queries

    @property
    def notes(self) -> list[str]:
        return list(self.run.notes)

    def to_dict(self) -> dict:
        return self.result.to_dict()

    def table(self) -> str:
        """The metrics table and paired tests as `ragmini eval` prints them, under a
        line naming the dataset, its chunking and any slice."""
        from eval.harness import format_table

        result = self.result
        chunking = result.chunking or {}
        label = f"{result.dataset} ({result.split})" if result.split else result.dataset
        sliced = f", where {result.where}" if result.where else ""
        return (f"{label}, chunks {chunking.get('size')}/{chunking.get('overlap')}{sliced}:\n"
                + format_table(result))

    def to_records(self) -> list[dict]:
        chunking = self.result.chunking or {}
        return [{"method": m, "dataset": self.result.dataset, "split": self.result.split,
                 "chunk_size": chunking.get("size"), "overlap": chunking.get("overlap"),
                 **r.metrics, **{f"{q}_ms": v for q, v in r.latency_ms.items()}}
                for m, r in self.result.methods.items()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def write_report(self, folder: PathLike) -> Path:
        from eval.runs import write_reports

        return write_reports([self.run], Path(folder))[0]


@dataclass(frozen=True)
class EvalSweep:
    """Several chunkings of one dataset (`eval --dataset --chunk-size 150,200`):
    one `EvalReport` each; `to_dict()` is the CLI's `{"settings": [...]}`."""

    reports: tuple[EvalReport, ...]

    @property
    def notes(self) -> list[str]:
        return [n for r in self.reports for n in r.notes]

    def table(self) -> str:
        return "\n\n".join(r.table() for r in self.reports)

    def to_dict(self) -> dict:
        return {"settings": [r.to_dict() for r in self.reports]}

    def to_records(self) -> list[dict]:
        return [row for r in self.reports for row in r.to_records()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def write_report(self, folder: PathLike) -> list[Path]:
        from eval.runs import write_reports

        return write_reports([r.run for r in self.reports], Path(folder))

    def __iter__(self) -> Iterator[EvalReport]:
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)


@dataclass(frozen=True)
class AnswerEvalReport:
    """Answer quality per generator: `eval answers --json`. `generators[name]` holds
    the metrics; `to_records()` / `to_dataframe()` give one row per generator."""

    result: AnswerEvalResult

    @property
    def generators(self) -> dict[str, dict[str, float]]:
        return self.result.generators

    def table(self) -> str:
        """The per-generator table as `ragmini eval answers` prints it."""
        from eval.answers import format_answer_table

        return f"{self.result.dataset} ({self.result.split}):\n" + format_answer_table(self.result)

    def to_dict(self) -> dict:
        return self.result.to_dict()

    def to_records(self) -> list[dict]:
        return [{"generator": g, "dataset": self.result.dataset, "split": self.result.split,
                 **metrics} for g, metrics in self.result.generators.items()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def write_report(self, folder: PathLike) -> Path:
        from eval.answers import write_answer_report

        return write_answer_report(self.result, Path(folder))


@dataclass(frozen=True)
class ConversationReport:
    """Follow-up retrieval (`eval conversations --json`): for each method, the last
    turn retrieved alone, made standalone from the history, and as the hand-written
    rewrite, with paired tests; the first method's figures at the top of `to_dict()`."""

    results: tuple

    def to_dict(self) -> dict:
        from eval.conversations import conversations_body

        return conversations_body(self.results)

    def table(self) -> str:
        from eval.conversations import format_conversation_table

        return "\n\n".join(f"{r.dataset} ({r.split}), {r.method}:\n"
                             + format_conversation_table(r) for r in self.results)


@dataclass(frozen=True)
class EvalHistory:
    """Past evaluation runs recorded in a store, newest first: `eval history --json`."""

    runs: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {"runs": list(self.runs)}

    def to_records(self) -> list[dict]:
        """One row per run and method, its metrics as columns."""
        return [{"id": r["id"], "ran_at": r["ran_at"], "dataset": r["dataset"],
                 "split": r["split"], "store_generation": r["store_generation"],
                 "chunk_size": (r["chunking"] or {}).get("size"),
                 "overlap": (r["chunking"] or {}).get("overlap"),
                 "n_queries": r["n_queries"], "method": m, **metrics}
                for r in self.runs for m, metrics in r["metrics"].items()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def __iter__(self) -> Iterator[dict]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


@dataclass(frozen=True)
class DatasetBuild:
    """A dataset built by `build_dataset`: where, and its metadata (the CLI's
    `datasets build --json` body)."""

    name: str
    path: Path
    metadata: dict

    def to_dict(self) -> dict:
        return dict(self.metadata)


