"""The Python API: one small object in front of the stages, for notebooks and programs.

    >>> import ragmini
    >>> store = ragmini.open("my-store")
    >>> store.ingest(["corpus/docs"])                       # creates the store
    >>> for hit in store.search("how does BM25 rank documents?", k=3):
    ...     print(hit.rank, round(hit.score, 3), hit.doc_id)
    >>> store.ask("What is product quantization?", generator="extractive").text

Every call does what the CLI command of the same name does, with the same defaults,
and returns a frozen record whose `to_dict()` is that command's `--json` body (the
CLI builds its bodies from the same records). Problems are raised as
`ragmini.RagminiError` or one of its subclasses (`StoreError`, `QueryError`,
`IndexStale`, `ModelUnavailable`), never `SystemExit`; nothing is printed, and
progress bars are off unless `progress=True`.

The package is split by concern, imports running one way: `errors`, `defaults`
(every default, in one place), the frozen results (`records`, `reports` for
evaluations, `lab_records`), `store` (`Store` and `open`), then `evaluation` and
`lab`, which take a store. Importing it is cheap: the
stages (and torch) load on first use. Models
load once per process and are shared by every store; a `Store` keeps one database
connection per thread, so searches may run from several threads at once.
See docs/python-api.md for worked examples.
"""

from __future__ import annotations

import os

# As `ragmini main()` sets them before any Hugging Face import (setdefault: the
# caller's own settings win).
for _key, _value in (("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error"),
                     ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
    os.environ.setdefault(_key, _value)

from ragmini import _API  # noqa: E402  (one list: the package re-exports exactly these)
from ragmini.api.defaults import STORE as DEFAULT_STORE  # noqa: E402,F401
from ragmini.api.errors import (  # noqa: E402
    IndexStale,
    ModelUnavailable,
    NotFound,
    QueryError,
    RagminiError,
    StoreError,
)
from ragmini.api.evaluation import (  # noqa: E402
    build_dataset,
    evaluate,
    evaluate_answers,
    evaluate_conversations,
    history,
    tune,
)
from ragmini.api.lab import analogy, generate, neighbors, similarity, tokens  # noqa: E402
from ragmini.api.lab_records import (  # noqa: E402
    Analogy,
    CorpusMap,
    Generation,
    Neighbors,
    Similarity,
    Tokens,
)
from ragmini.api.records import (  # noqa: E402
    Answer,
    ChunkContext,
    CompareResult,
    DocumentList,
    DocumentText,
    IngestResult,
    Methods,
    Reindexed,
    Removal,
    SearchResult,
    Status,
)
from ragmini.api.reports import (  # noqa: E402
    AnswerEvalReport,
    ConversationReport,
    DatasetBuild,
    EvalHistory,
    EvalReport,
    EvalSweep,
)
from ragmini.api.store import Store, open  # noqa: E402,A004

__all__ = list(_API)


def configure(allow_download: bool = False) -> None:
    """Set the process up for a front end, before any model library loads: offline
    (HF_HUB_OFFLINE) unless `allow_download`, quiet tokenizers and transformers."""
    from core.models import configure_offline

    configure_offline(allow_download=allow_download)
