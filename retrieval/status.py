"""Does every index agree with the store? What would it take to make it so?"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ingest.store import Store
from ragmini.errors import IndexStale
from retrieval.index import load_index, read_params


@dataclass(frozen=True)
class MethodStatus:
    method: str
    model: str
    vectors: int  # live chunks with a vector
    empty: int  # live chunks embedded with nothing to embed
    unembedded: int  # live chunks with no vector row yet
    index_file_bytes: int
    index_generation: int | None
    behind: int  # store commits the index does not reflect yet
    problems: list[str] = field(default_factory=list)  # the index disagrees with the store

    @property
    def consistent(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class StoreStatus:
    root: str
    schema_version: int
    generation: int
    documents: int
    chunks: int
    chunking: dict | None
    methods: list[MethodStatus]

    @property
    def consistent(self) -> bool:
        return all(m.consistent for m in self.methods)

    @property
    def up_to_date(self) -> bool:
        return all(m.behind == 0 and m.unembedded == 0 for m in self.methods)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["consistent"] = self.consistent
        out["up_to_date"] = self.up_to_date
        return out


def check_bm25(store: Store) -> MethodStatus:
    """bm25 indexes chunk texts: compare its chunk ids with the store's at its generation."""
    from retrieval.bm25 import Bm25Searcher, read_bm25_params

    info = store.method_info("bm25") or {"model": "?"}
    problems: list[str] = []
    size, generation, behind, n = 0, None, 0, 0
    try:
        params = read_bm25_params(store.index_dir)
    except IndexStale as exc:
        params, problems = None, [str(exc)]
    if params is None:
        problems = problems or ["no index file"]
    else:
        generation, behind = params.store_generation, store.generation - params.store_generation
        folder = store.index_dir / params.folder
        size = sum(f.stat().st_size for f in folder.iterdir()) if folder.is_dir() else 0
        try:
            searcher = Bm25Searcher(store)
        except IndexStale as exc:
            problems.append(str(exc))
        else:
            n = len(searcher.ids)
            live = store.chunk_ids(generation)
            if not np.array_equal(np.sort(searcher.ids), live):
                problems.append(f"index holds {n} chunks, the store had {len(live)} at "
                                f"generation {generation}")
    return MethodStatus("bm25", info["model"], n, 0, 0, size, generation, behind, problems)


def check_method(store: Store, method: str) -> MethodStatus:
    """Compare `method`'s index with the store: params, checksum and the exact id set."""
    if method == "bm25":
        return check_bm25(store)
    info = store.method_info(method) or {"model": "?", "dim": 0}
    vectors, empty = store.vector_counts(method)
    unembedded = len(store.chunks_without_vectors(method))
    problems: list[str] = []
    size, generation, behind = 0, None, 0
    try:
        params = read_params(store.index_dir, method)
    except IndexStale as exc:
        params, problems = None, [str(exc)]
    if params is None:
        problems = problems or ["no index file"]
    else:
        generation = params.store_generation
        behind = store.generation - generation
        path = store.index_dir / params.file
        size = path.stat().st_size if path.exists() else 0
        if params.model != info["model"]:
            problems.append(f"index built with {params.model}, store vectors from {info['model']}")
        if behind < 0:
            problems.append(f"index generation {generation} is ahead of the store ({store.generation})")
        try:
            index = load_index(store.index_dir, params)
        except IndexStale as exc:
            problems.append(str(exc))
        else:
            import faiss

            indexed = np.sort(faiss.vector_to_array(index.id_map))
            expected = store.vector_ids(method, generation)
            if not np.array_equal(indexed, expected):
                problems.append(
                    f"index holds {len(indexed)} ids, the store has {len(expected)} vectors for "
                    f"generation {generation} ({len(np.setdiff1d(indexed, expected))} unknown, "
                    f"{len(np.setdiff1d(expected, indexed))} missing)"
                )
    return MethodStatus(method, info["model"], vectors, empty, unembedded, size, generation,
                        behind, problems)


def check_store(store: Store) -> StoreStatus:
    version = int(store.get_meta("schema_version"))
    return StoreStatus(
        root=str(store.root),
        schema_version=version,
        generation=store.generation,
        documents=store.count("documents"),
        chunks=store.count("chunks"),
        chunking=store.chunk_config(),
        methods=[check_method(store, m) for m in store.methods()],
    )
