"""The one registry of retrieval methods: what each name means, and how to open it.

Adding a method is one module plus one line here: a new embedder is a
`DenseMethod(name, loader)`; anything else implements `contract.Method`
(as `bm25.Bm25Method` does); a new fusion of two methods is a searcher class
in `FUSIONS`. Everything else (ingest, status, reindex, eval, the CLI) asks
this module and never names a method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import numpy as np

from core.cache import Memo
from core.errors import QueryError
from ingest.store import Store
from retrieval.bm25 import Bm25Method
from retrieval.contract import Embedder, Method, Searcher
from retrieval.dense import DenseMethod
from retrieval.hybrid import FusionParams, FusionSearcher
from retrieval.onnx_minilm import ENCODERS, ONNX_INT8, TORCH, encoder_of
from retrieval.tfidf import TfidfMethod


# Loaded models, shared by every store of the process (a server, a notebook).
MODELS = Memo(size=8)


def _glove_packaged() -> Embedder:
    from retrieval.glove import GloveEmbedder

    return GloveEmbedder.packaged()


def _glove(store: Store) -> Embedder:
    return MODELS.get("glove", _glove_packaged)


def _glove_sif(store: Store) -> Embedder:
    from retrieval.sif import sif_for_store

    # The component is fitted on (and frozen in) each store; the word vectors are shared.
    return sif_for_store(store, _glove(store))


def _w2v(store: Store) -> Embedder:
    from retrieval.w2v import w2v_for_store

    # Trained on (and frozen in) each store the first time it is needed.
    return w2v_for_store(store)


def _w2v_sif(store: Store) -> Embedder:
    from retrieval.w2v import W2vSifEmbedder

    # The store's w2v model, its words weighted by their frequency in the same chunks.
    return W2vSifEmbedder(_w2v(store))


# How new sbert vectors are made unless `ingest --encoder` says otherwise: MiniLM in
# ONNX Runtime with int8 weights. bench/encoders.py measured it against the torch
# encoder on the man-page chunks and test split (docs/performance.md "Encoders").
DEFAULT_ENCODER = ONNX_INT8


def sbert_encoder(encoder: str = DEFAULT_ENCODER) -> Embedder:
    """The sbert method's embedder run by `encoder` (torch, onnx or onnx-int8),
    loaded once per process."""
    if encoder not in ENCODERS:
        raise QueryError(f"unknown encoder '{encoder}'; choose from {', '.join(ENCODERS)}",
                         param="encoder")
    if encoder == TORCH:
        from retrieval.sbert import SbertEmbedder

        return MODELS.get("sbert", SbertEmbedder.packaged)
    from retrieval.onnx_minilm import OnnxMiniLM

    return MODELS.get(f"sbert:{encoder}", lambda: OnnxMiniLM.packaged(encoder))


def _glove_portable(encoder: str | None = None) -> Embedder:
    return MODELS.get("glove", _glove_packaged)


def _sbert_portable(encoder: str | None = None) -> Embedder:
    return sbert_encoder(encoder or DEFAULT_ENCODER)


def store_encoder(store: Store) -> str | None:
    """The encoder that made the store's sbert vectors (None: it has none)."""
    info = store.method_info("sbert")
    return None if info is None else encoder_of(info["model"])


def _sbert(store: Store) -> Embedder:
    # Queries are encoded the way the stored vectors were; the index check then
    # holds the index to those same vectors (its recorded model names the encoder).
    return sbert_encoder(store_encoder(store) or DEFAULT_ENCODER)


def encoder_note(store: Store) -> str | None:
    """A line for a store whose sbert vectors come from another encoder than the
    default: what it costs and the command that re-embeds them."""
    current = store_encoder(store)
    if current is None or current == DEFAULT_ENCODER:
        return None
    return (f"sbert vectors here come from the {current} encoder; new stores use "
            f"{DEFAULT_ENCODER} (faster to embed and to start). `ragmini ingest PATH "
            f"--encoder {DEFAULT_ENCODER}` re-embeds them; searches keep using {current} "
            "until then.")


# Methods with an index of their own, in the order they are listed to users.
INDEXED: dict[str, Callable[[], Method]] = {
    "glove": lambda: DenseMethod("glove", _glove, portable=_glove_portable),
    "glove-sif": lambda: DenseMethod("glove-sif", _glove_sif),
    "sbert": lambda: DenseMethod("sbert", _sbert, portable=_sbert_portable),
    "bm25": Bm25Method,
    "tfidf": TfidfMethod,
    "w2v": lambda: DenseMethod("w2v", _w2v),
    "w2v-sif": lambda: DenseMethod("w2v-sif", _w2v_sif),
}


@dataclass(frozen=True)
class Fusion:
    parts: tuple[str, str]  # what the bare name fuses; NAME:A+B picks any two
    default: FusionParams  # used until `eval --tune NAME` records tuned ones in the store
    tunable: bool = True
    in_default_eval: bool = True


# The default hybrid: equal weights on z-scored scores, the setting whose worst margin
# over the better part alone, across the dev sets of the man pages, the FAQ and the
# bundled queries, is largest (bench/fusion.py; docs/evaluation.md "Fusion that does not lose").
FUSIONS: dict[str, Fusion] = {
    "hybrid": Fusion(("bm25", "sbert"), FusionParams("convex", (0.5, 0.5), "zscore")),
    "hybrid-rrf": Fusion(("bm25", "sbert"), FusionParams("rrf", (1.0, 1.0)), tunable=False),
    "hybrid-wrrf": Fusion(("bm25", "sbert"), FusionParams("rrf", (0.1, 0.9)),
                          in_default_eval=False),
}
FUSION_META = "fusion.{}"  # store meta key of a fusion's tuned params


def fusion_params(store: Store, name: str) -> FusionParams:
    """The params a fusion is opened with: tuned ones recorded in the store, else its
    default."""
    raw = store.get_meta(FUSION_META.format(name))
    return FusionParams.from_json(raw) if raw else FUSIONS[name].default


# What `ingest` builds unless told (no model to train, every classic baseline), and
# what `eval` compares on a dataset: w2v trains a model into the store (a minute on
# 28k chunks), so it is asked for by name.
DEFAULT_INGEST = ("glove", "glove-sif", "sbert", "bm25", "tfidf")


def names() -> tuple[str, ...]:
    """Every method name, indexed ones first (read at call time: the registry may grow)."""
    return (*INDEXED, *FUSIONS)


DEFAULT_METHOD = "sbert"  # what search and ask rank by unless told otherwise
DEFAULT_K = 5  # how many chunks search shows unless told otherwise
DEFAULT_FUSION = "hybrid"  # the fusion offered first (compare's third column)
# The sentence encoder that judges answers: support scores, extractive picks and the
# abstention model (calibrated on its scores) all read it.
ENCODER = "sbert"
HELP = (", ".join(names()) + " (the hybrids fuse bm25 and sbert), or hybrid:A+B to fuse "
        "any two")


def parse_fusion(method: str) -> tuple[str, tuple[str, str]] | None:
    """(fusion name, (a, b)) for "hybrid" or "hybrid:a+b"; None for a plain method."""
    name, _, spec = method.partition(":")
    if name not in FUSIONS:
        return None
    if not spec:
        return name, FUSIONS[name].parts
    parts = spec.split("+")
    if len(parts) == 2 and all(parts) and parse_fusion(parts[0]) is None \
            and parse_fusion(parts[1]) is None:
        return name, (parts[0], parts[1])
    raise QueryError(f"'{method}': write a {name} as {name}:A+B, e.g. {name}:bm25+sbert",
                     param="method")


def check_method(method: str) -> str:
    """`method` if the registry knows it (a fusion through its parts), else QueryError
    listing the valid names."""
    fusion = parse_fusion(method)
    for name in fusion[1] if fusion else (method,):
        if name not in INDEXED:
            raise QueryError(f"unknown method '{name}'; choose from {', '.join(names())} or "
                             "hybrid:A+B", param="method")
    return method


def parse_methods(value: str | Iterable[str]) -> list[str]:
    """Validated methods from "a,b" or a list, duplicates dropped, order kept."""
    items = value.split(",") if isinstance(value, str) else list(value)
    methods = [check_method(m.strip()) for m in items if m.strip()]
    if not methods:
        raise QueryError("no method given", param="methods")
    return list(dict.fromkeys(methods))


def get_method(name: str) -> Method:
    """The Method behind an indexed method name."""
    check_method(name)
    if name not in INDEXED:
        raise QueryError(f"'{name}' fuses other methods and has no index of its own",
                         param="method")
    return INDEXED[name]()


def index_parts(methods: Iterable[str]) -> list[str]:
    """The indexes behind `methods`: a fusion needs its two parts, nothing of its own."""
    out: list[str] = []
    for m in methods:
        fusion = parse_fusion(m)
        out.extend(fusion[1] if fusion else (check_method(m),))
    return list(dict.fromkeys(out))


def portable_embedder(method: str, encoder: str | None = None) -> Embedder:
    """The embedder of `method` as loaded from its package alone, with no store (sbert
    run by `encoder`): what a Ray worker can load."""
    found = get_method(method)
    if not isinstance(found, DenseMethod) or found.portable is None:
        raise QueryError(f"'{method}' is fitted on the store (or has no embedder); only "
                         f"{', '.join(portable_methods(INDEXED))} load alone", param="method")
    return found.portable(encoder)


def portable_methods(methods: Iterable[str]) -> list[str]:
    """Those of `methods` whose embedder loads from its package alone."""
    out = []
    for m in methods:
        found = get_method(m)
        if isinstance(found, DenseMethod) and found.portable is not None:
            out.append(m)
    return out


def portable_loaders(methods: Iterable[str], encoder: str | None = None
                     ) -> dict[str, Callable[[], Embedder]]:
    """{method: a picklable function that loads its embedder} for those of `methods`
    that load alone: what the Ray engine ships to its workers."""
    return {m: partial(portable_embedder, m, encoder) for m in portable_methods(methods)}


def get_embedder(method: str, store: Store) -> Embedder:
    """Load the embedder of a dense method (glove-sif is fitted on the store's chunks)."""
    found = get_method(method)
    if not isinstance(found, DenseMethod):
        raise QueryError(f"'{method}' is not an embedding method", param="method")
    return found.load_embedder(store)


def default_eval_methods(indexed: Iterable[str]) -> list[str]:
    """What `eval` compares on a store: every indexed method (in registry order), plus
    each fusion whose default parts are both indexed."""
    indexed = set(indexed)
    chosen = [m for m in INDEXED if m in indexed]
    for name, fusion in FUSIONS.items():
        if fusion.in_default_eval and set(fusion.parts) <= set(indexed):
            chosen.append(name)
    return chosen


def select(store: Store, where) -> np.ndarray | None:
    """The chunk ids a metadata filter keeps (`--where` strings or a parsed Where),
    for a searcher's `allowed`; None when there is no filter."""
    from ingest.filters import Where, parse_where

    parsed = where if isinstance(where, Where) or where is None else parse_where(where)
    return None if parsed is None else store.select_chunks(parsed)


def open_searcher(store: Store, method: str, embedders: dict[str, Embedder] | None = None
                  ) -> Searcher:
    """A Searcher for any method name: indexed, or a fusion of two."""
    embedders = embedders or {}
    fusion = parse_fusion(method)
    if fusion is not None:
        name, (a, b) = fusion
        return FusionSearcher(name, open_searcher(store, a, embedders),
                              open_searcher(store, b, embedders), fusion_params(store, name))
    return get_method(method).open(store, embedders.get(method))


# Methods that see only the words of a fixed vocabulary (reports list the rest).
FIXED_VOCABULARY = frozenset({"glove", "glove-sif"})
# Pairs whose disagreements a report spells out, query by query.
CONTRASTS = (("glove", "sbert"), ("glove", "glove-sif"), ("bm25", "sbert"), ("sbert", "hybrid"),
             ("hybrid-rrf", "hybrid"))


def unknown_words(methods: Iterable[str]) -> Callable[[str], list[str]] | None:
    """For reports: a function listing the words of a query that a fixed-vocabulary
    method among `methods` cannot see, or None when none has one."""
    if FIXED_VOCABULARY & set(index_parts(methods)):
        return MODELS.get("glove", _glove_packaged).unknown_words
    return None


def index_generation(searcher: Searcher, store: Store) -> int:
    """The store generation a searcher's index was built from: what its hits are.
    Read from the index's own params, not as `store.generation - behind` after the
    search (the store may have moved on in between, and that would name a newer
    generation than the one that answered). A fusion: the older of its parts."""
    parts = getattr(searcher, "parts", None)
    if parts:
        return min(index_generation(p, store) for p in parts)
    built = getattr(getattr(searcher, "params", None), "store_generation", None)
    return built if isinstance(built, int) else store.generation - searcher.behind


def default_compare_methods(indexed: Iterable[str]) -> list[str]:
    """What compare lines up unless told: the default dense method, the other part of
    the default fusion (the lexical one), and that fusion, as far as the store has
    them; topped up from `default_eval_methods` to at least two."""
    indexed = list(indexed)
    fusion = FUSIONS[DEFAULT_FUSION]
    wanted = [DEFAULT_METHOD, *(p for p in fusion.parts if p != DEFAULT_METHOD)]
    chosen = [m for m in wanted if m in indexed]
    if set(fusion.parts) <= set(indexed):
        chosen.append(DEFAULT_FUSION)
    for m in default_eval_methods(indexed):
        if len(chosen) >= 2:
            break
        if m not in chosen:
            chosen.append(m)
    return chosen


@dataclass(frozen=True)
class MethodCatalogue:
    """What a front end offers for one store: its indexed methods (registry order),
    every fusion with whether the store has its parts, and the defaults."""

    methods: tuple[str, ...]
    fusions: tuple[tuple[str, tuple[str, str], bool], ...]  # (name, parts, available)
    default_method: str
    default_k: int
    compare: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"methods": list(self.methods),
                "fusions": [{"name": n, "parts": list(p), "available": a}
                            for n, p, a in self.fusions],
                "defaults": {"method": self.default_method, "k": self.default_k,
                             "compare": list(self.compare)}}


def catalogue(indexed: Iterable[str]) -> MethodCatalogue:
    """The methods and defaults for a store whose indexed methods are `indexed`
    (`Store.methods()`). The default method is DEFAULT_METHOD when indexed, else
    the store's first."""
    have = set(indexed)
    methods = tuple(m for m in INDEXED if m in have)
    fusions = tuple((name, f.parts, set(f.parts) <= have) for name, f in FUSIONS.items())
    default = DEFAULT_METHOD if DEFAULT_METHOD in have or not methods else methods[0]
    return MethodCatalogue(methods, fusions, default, DEFAULT_K,
                           tuple(default_compare_methods(methods)))
