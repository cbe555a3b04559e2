"""`ingest --engine ray`: chunking and embedding as Ray Data pipelines.

The driver (this process) reads the files, owns the SQLite store and writes every
row, as a plain ingest does; Ray does the CPU-heavy middle: `map_batches` over
documents with a pool of chunking actors (the tokenizer loaded once per actor),
then over the chunks that lack a vector with a pool of embedding actors (the
encoder loaded once per actor). Order is preserved, so chunk ids, rows and
vectors equal a plain ingest's.

Methods whose embedder is fitted on the store itself (glove-sif's component, w2v)
are embedded by the plain path after the Ray stage; glove and sbert go through Ray.

With no address, a local Ray is started for the call (dashboard and usage stats
off) and shut down after it, leaving no process behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator

import numpy as np

from core.errors import RagminiError
from ingest.chunk import Chunk, ChunkConfig
from ingest.load import Document
from ingest.store import Store
from retrieval.contract import Embedder, passage_text

# A lost actor fails the run (a re-run resumes: chunk batches are committed as they
# come) rather than restarting: Ray cannot restart Ray Data's actors reliably, and
# says so on stderr for every actor that allows it (ray-project/ray#53727).
NO_RESTARTS = {"max_restarts": 0}
BATCH = 256  # chunks an embedding call, documents a chunking call


@contextlib.contextmanager
def ray_session(address: str | None = None, progress: bool = True) -> Iterator[int]:
    """Ray connected for the block, yielding its CPU count; a local Ray started
    here is shut down at the end, whatever happens."""
    try:
        import ray
    except ImportError:
        raise RagminiError("--engine ray needs Ray Data: `.venv/bin/pip install -e "
                           "'.[scale]'` (make setup does it)") from None
    if address:
        _check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR", configure_logging=True,
                     **({} if address else {"num_cpus": os.cpu_count() or 1}))
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            where = address or "a local Ray"
            raise RagminiError(f"cannot start or reach {where} ({first}); check "
                               "--ray-address, or drop it to run Ray locally") from None
    if not progress:  # Ray Data logs its progress when stderr is not a terminal
        _quiet_ray_data()
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # chunk ids follow file order
        context.enable_progress_bars = progress
        yield int(ray.cluster_resources().get("CPU", 1))
    except ray.exceptions.RayError as exc:  # a task, an actor or user code in one
        first = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
        raise RagminiError(f"the Ray pipeline failed ({first}); the batches written so far "
                           "are kept: run the ingest again to finish") from None
    finally:
        if started:
            _shutdown(ray)


def _shutdown(ray) -> None:
    """Shut the local Ray down and wait for its processes to end: `ray.shutdown`
    returns before its workers have exited, and on a loaded machine they linger
    for seconds. Any still alive after 10 s is killed (psutil comes with Ray)."""
    import psutil

    try:
        spawned = psutil.Process().children(recursive=True)
    except psutil.Error:
        spawned = []
    ray.shutdown()
    _, alive = psutil.wait_procs(spawned, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def _quiet_ray_data() -> None:
    import importlib
    import logging
    import warnings

    importlib.import_module("ray.data")  # configures its loggers on import; adjusted below

    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.data")


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a cluster address nothing listens at (Ray itself retries
    for minutes). "auto" and addresses without a port are left to Ray."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise RagminiError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); "
                           "check --ray-address, or drop it to run Ray locally") from None


class _Chunker:
    """A Ray actor: one tokenizer, many documents. Its settings are class attributes
    of a subclass made per run (`_bound`): constructor arguments would go through
    Ray's object store, and Ray warns about every actor built from them."""

    config: dict = {}

    def __init__(self):
        from ingest.chunk import Chunker, load_fast_tokenizer

        self.chunker = Chunker(load_fast_tokenizer(), ChunkConfig(**self.config))

    def __call__(self, batch: dict) -> dict:
        from ingest.chunk import locate

        out = []
        split = self.chunker.split_many([str(text) for text in batch["text"]])
        for chunks, locations, kind in zip(split, batch["locations"], batch["kind"]):
            located = tuple((int(o), str(label)) for o, label in locations)
            chunks = locate(chunks, located, str(kind))
            out.append(json.dumps([dataclasses.astuple(c) for c in chunks]))
        return {"chunks": np.array(out, dtype=object)}


class _Embedder:
    """A Ray actor: one encoder, many chunks (settings as `_Chunker`'s). `load` is a
    picklable function (`retrieval.methods.portable_loaders`) that loads the model
    from its package: the worker imports what it names, this module names nothing."""

    load: Callable[[], Embedder] | None = None

    def __init__(self):
        self.embedder = self.load()

    def __call__(self, batch: dict) -> dict:
        vectors = self.embedder.embed([str(t) for t in batch["text"]])
        return {"id": batch["id"], "vector": list(vectors)}


def _bound(actor: type, **settings) -> type:
    return type(actor.__name__, (actor,), settings)


def _map_batches(data, actor: type, batch_size: int, workers: int):
    """`data` through a pool of `workers` actors of `actor`, one CPU each."""
    import warnings

    import ray

    with warnings.catch_warnings():
        # max_restarts goes in the deprecated **ray_remote_args (Ray 2.60, pinned)
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        return data.map_batches(actor, batch_size=batch_size, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                                **NO_RESTARTS)


def ray_splitter(workers: int):
    """An `ingest.pipeline.Splitter` that chunks on Ray with `workers` actors."""

    def split(documents: list[Document], config: ChunkConfig, progress: bool = True
              ) -> Iterator[list[Chunk]]:
        import ray

        if not documents:
            return
        rows = [{"text": d.text, "locations": [list(x) for x in d.locations],
                 "kind": d.location_kind} for d in documents]
        data = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * workers))
        chunked = _map_batches(data, _bound(_Chunker, config=dataclasses.asdict(config)),
                               BATCH // 8, workers)
        for row in chunked.iter_rows():
            yield [Chunk(*fields) for fields in json.loads(row["chunks"])]

    return split


def embed_on_ray(store: Store, loaders: dict[str, Callable[[], Embedder]], workers: int,
                 progress: bool = True) -> dict[str, int]:
    """Embed the chunks that lack a vector, on Ray, for each method of `loaders`
    ({method: a picklable function loading its embedder}); {method: chunks embedded}.
    The driver loads each model too, once, to record what made the vectors (the same
    registration a plain ingest does)."""
    import ray
    from tqdm import tqdm

    done = {}
    for method, load in loaders.items():
        probe = load()
        store.register_method(method, probe.model, probe.dim)
        missing = store.chunks_without_vectors(method)
        if not missing:
            done[method] = 0
            continue
        rows = [{"id": c.chunk_id, "text": passage_text(c.title, c.text)} for c in missing]
        data = ray.data.from_items(rows, override_num_blocks=max(1, min(
            len(rows) // BATCH, 8 * workers)))
        embedded = _map_batches(data, _bound(_Embedder, load=staticmethod(load)),
                                BATCH, workers)
        with tqdm(total=len(rows), desc=f"embedding on ray ({method})", unit="chunk",
                  disable=not progress or None, leave=False) as bar:
            for batch in embedded.iter_batches(batch_size=BATCH, batch_format="numpy"):
                vectors = np.stack(batch["vector"]).astype(np.float32)
                store.put_vectors(method, [int(i) for i in batch["id"]], vectors)
                bar.update(len(vectors))
        done[method] = len(rows)
    return done
