"""What every benchmark script shares: paths, the offline environment, timing, memory,
stores made for a run, and the results file with its targets.

    from bench.common import REPO, timed, median_ms, write_results, Target

Run scripts as modules from the repository root (`python -m bench.NAME`), so the
stage packages import as they do for the CLI; importing this module sets the
offline environment (setdefault: the caller's own settings win) before any model
library loads. A script that should also run as `python bench/NAME.py` starts with

    if not __package__:  # `python bench/NAME.py`: import the repository's packages
        sys.path[0] = str(Path(__file__).resolve().parents[1])
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
CORPUS = REPO / "corpus" / "docs"
QUERIES = REPO / "corpus" / "queries.jsonl"
ANSWERS = REPO / "corpus" / "answers.jsonl"
VENV_BIN = REPO / ".venv" / "bin"
RAGMINI = VENV_BIN / "ragmini"
# The benchmark datasets (`ragmini datasets build manpages|faq --out DATA/NAME`);
# $RAGMINI_BENCH_DATA points elsewhere (a shared, read-only copy, say).
DATA = Path(os.environ.get("RAGMINI_BENCH_DATA", REPO / "data"))
MANPAGES = DATA / "manpages"
FAQ = DATA / "faq"

for _key, _value in (("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                     ("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error")):
    os.environ.setdefault(_key, _value)


def percentile(values: Sequence[float], q: float) -> float:
    """The project's one percentile convention (core.timing)."""
    from core.timing import percentile as pct

    return pct(values, q)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """{"p50", "p95", "n"} in milliseconds of timings given in seconds."""
    ms = [s * 1000 for s in seconds]
    return {"p50": round(percentile(ms, 50), 3), "p95": round(percentile(ms, 95), 3),
            "n": len(ms)}


def median_ms(seconds: Sequence[float]) -> float:
    return round(statistics.median(seconds) * 1000, 3) if seconds else 0.0


def timed(fn: Callable[[], Any], repeat: int = 1, warmup: int = 0) -> tuple[list[float], Any]:
    """Seconds per call of `fn` over `repeat` calls after `warmup` calls; and the last value."""
    value = None
    for _ in range(warmup):
        value = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return times, value


@contextlib.contextmanager
def stopwatch() -> Iterator[dict]:
    """`with stopwatch() as t: ...` then `t["seconds"]`."""
    out: dict = {}
    started = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - started


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its waited-for children), MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def command_peak_rss_mb(cmd: Sequence[str]) -> float:
    """Peak resident memory of one command run to the end, MiB. Measured from a fresh
    Python in between, so that no earlier child of this process counts."""
    import subprocess
    import sys

    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *map(str, cmd)], check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def dir_mb(path: Path) -> float:
    """Bytes on disk under `path`, MB."""
    total = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return round(total / 2**20, 2)


@contextlib.contextmanager
def temp_dir(prefix: str = "ragmini-bench-") -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cache_root() -> Path:
    """ragmini's cache folder (built datasets, peer venvs): $RAGMINI_CACHE or ~/.cache/ragmini."""
    from core.models import cache_dir

    return cache_dir()


OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


@dataclass(frozen=True)
class Target:
    """A figure's goal: `value` compared with `goal` by `op` ("<", "<=", ">", ">="); no
    goal (None) records a measurement whose target was retired. `also` names a second
    condition that must hold too (a difference "not significant"), `also_met` whether
    it does."""

    name: str
    value: float | None
    goal: float | None
    op: str = "<="
    unit: str = ""
    also: str = ""
    also_met: bool = True

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, not {self.op!r}")

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.goal is None:
            return True
        return bool(OPS[self.op](float(self.value), float(self.goal))) and self.also_met

    @property
    def goal_text(self) -> str:
        if self.goal is None:
            return "none"
        return f"{self.op} {self.goal:g}" + (f", {self.also}" if self.also else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "goal_text": self.goal_text, "met": self.met}


def machine() -> dict:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "date": _dt.date.today().isoformat()}


def write_results(name: str, results: dict, targets: Sequence[Target] | None = None,
                  out: Path | None = None) -> Path:
    """Write bench/NAME_results.json (or `out`) atomically: the machine, the figures, and
    (when given) each target with met or not; returns the path. A `machine` or `targets`
    key the script wrote itself is kept."""
    path = out or BENCH / f"{name}_results.json"
    body = {"bench": name, "machine": machine(), **results}
    if targets is not None:
        body["targets"] = [t.to_dict() for t in targets]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def targets_table(targets: Sequence[Target]) -> str:
    """The targets as a Markdown table."""
    rows = ["| target | value | goal | met |", "|---|---|---|---|"]
    for t in targets:
        unit = f" {t.unit}" if t.unit else ""
        value = "n/a" if t.value is None else f"{t.value:g}{unit}"
        met = {True: "yes", False: "**no**", None: "n/a"}[t.met]
        rows.append(f"| {t.name} | {value} | {t.goal_text} | {met} |")
    return "\n".join(rows)
