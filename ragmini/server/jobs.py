"""Evaluation jobs of `ragmini serve`: one at a time (it uses every core), run in a
thread through the public API's `Store.evaluate`, polled by the page."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ragmini
from ragmini.api.errors import RagminiError, http_status


class Busy(Exception):
    """Another job is still running (its id is the message)."""


@dataclass
class EvalJob:
    id: str
    state: str = "queued"  # queued, running, done, failed
    started: float = field(default_factory=time.time)
    result: dict | None = None
    error: dict | None = None
    plot: Path | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "state": self.state, "result": self.result, "error": self.error,
                "plot": f"/api/eval/{self.id}/plot.png" if self.plot else None}


class EvalJobs:
    """The server's eval jobs and the folder their reports go to (made on the first
    job, removed by `close`)."""

    def __init__(self) -> None:
        self.jobs: dict[str, EvalJob] = {}
        self.lock = threading.Lock()
        self._folder: Path | None = None

    def get(self, job_id: str) -> EvalJob | None:
        return self.jobs.get(job_id)

    def start(self, run: Callable[[], ragmini.EvalReport]) -> EvalJob:
        """A job running `run` in a thread; Busy if one is still running."""
        with self.lock:
            busy = [j.id for j in self.jobs.values() if j.state in ("queued", "running")]
            if busy:
                raise Busy(busy[0])
            job = EvalJob(uuid.uuid4().hex[:12])
            self.jobs[job.id] = job
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="ragmini-serve-"))
            folder = self._folder / job.id
        threading.Thread(target=self._run, args=(job, run, folder), daemon=True).start()
        return job

    @staticmethod
    def _run(job: EvalJob, run: Callable[[], ragmini.EvalReport], folder: Path) -> None:
        job.state = "running"
        try:
            report = run()
            report.write_report(folder)
            plot = folder / "recall_at_k.png"
            job.plot = plot if plot.is_file() else None
            job.result = report.to_dict()
            job.state = "done"
        except RagminiError as exc:
            job.error = {"code": http_status(exc)[1], "message": str(exc)}
            job.state = "failed"
        except Exception:  # noqa: BLE001 (reported through the job, never as a traceback)
            job.error = {"code": "internal", "message": "internal error"}
            job.state = "failed"

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
