"""Every default of the public API, in one place.

The Python API's keyword defaults are these names, the CLI shows them in `--help`,
the HTTP request models and `/api/methods` read them, and the page asks
`/api/methods`: a default changed here changes everywhere, and nowhere else.
The values themselves come from the stage that owns each idea (the method
registry, the generator loader, the decoding settings), so there is one
source for each.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from eval.answers import DEFAULT_GENERATORS as ANSWER_EVAL_GENERATORS  # noqa: F401 (re-export)
from generation.answer import Sampling
from generation.models import available_generators, default_generator
from ingest.reading import MEDIA_TYPES
from retrieval.methods import HELP as METHOD_HELP  # noqa: F401 (re-export)
from retrieval.methods import (
    DEFAULT_ENCODER,
    DEFAULT_INGEST,
    DEFAULT_K,
    DEFAULT_METHOD,
    ENCODERS,
    catalogue,
    default_compare_methods,
    names,
)
from retrieval.index import INDEX_TYPES

# The store folder: `--store`, `ragmini.open(path)`; $RAGMINI_STORE overrides it.
STORE = ".ragmini"
STORE_ENV = "RAGMINI_STORE"

METHOD = DEFAULT_METHOD  # what search and ask rank by
SEARCH_K = DEFAULT_K     # chunks a search returns (5)
COMPARE_K = 10           # chunks per method in a comparison
ASK_K = 3                # chunks an answer is written from

# The generator an answer is written by unless told: None means the configured
# default, read at call time (`generator()`: extractive, or $RAGMINI_GENERATOR).
GENERATOR = None
# The lab samples from a language model, whatever answers: the design's distilgpt2
# (the packaged SmolLM2 stands in offline).
LAB_GENERATOR = "distilgpt2"
STRICT = True            # drop unsupported sentences; none left: answer extractively
ABSTAIN = True           # decline when the retrieval evidence says there is no answer
SAMPLING = Sampling()    # temperature 0 (greedy), top_p 1, top_k 0, 128 new tokens, ...

INGEST_METHODS = DEFAULT_INGEST
CHUNK_SIZE = 200         # MiniLM tokens
OVERLAP = 30
MAX_FILE_MB = 20.0
EXTRACT_TIMEOUT = 60.0   # seconds to read one PDF, DOCX, EPUB or ODT file
ENCODER = DEFAULT_ENCODER

HISTORY_LIMIT = 20       # past eval runs listed

# The Content-Types a document's original file is served with.
FILE_MEDIA_TYPES = tuple(sorted(set(MEDIA_TYPES.values())))


def generator() -> str:
    """The generator that writes answers when none is named: extractive unless
    $RAGMINI_GENERATOR names another (an OpenAI-compatible model, say)."""
    return default_generator()


def generators() -> list[str]:
    """The generators this process offers by name, the default first (a picker, the
    OpenAI-compatible `/v1/models`); nothing is loaded."""
    return list(available_generators())


def store_path(path: str | os.PathLike | None = None) -> Path:
    """The store folder a front end opens: `path`, else $RAGMINI_STORE, else .ragmini."""
    return Path(path if path is not None else os.environ.get(STORE_ENV, STORE))


def compare_methods(indexed: Iterable[str]) -> list[str]:
    """The methods a comparison shows by default on a store indexed with `indexed`: the
    dense default, the lexical part of the default hybrid, and that hybrid, those the
    store can answer (at least two)."""
    return default_compare_methods(indexed)


# What each generator is, for a picker.
GENERATOR_NOTES = {"extractive": "no language model: the sources' own sentences",
                   "smollm2": "SmolLM2-135M-Instruct, packaged",
                   "distilgpt2": "the design's model; SmolLM2 stands in offline"}


def describe(indexed: Iterable[str]) -> dict:
    """The methods and defaults, for a front end that lists them (the page's
    `/api/methods`, the MCP status resource): the store's indexed methods, every fusion
    with whether the store has its parts, the generators, and the defaults."""
    have = list(indexed)
    found = catalogue(have).to_dict()
    found["defaults"].update({
        "generator": generator(), "search_k": SEARCH_K, "compare_k": COMPARE_K, "ask_k": ASK_K,
        "strict": STRICT, "abstain": ABSTAIN, "temperature": SAMPLING.temperature,
        "top_p": SAMPLING.top_p, "top_k": SAMPLING.top_k,
        "max_new_tokens": SAMPLING.max_new_tokens, "no_repeat_ngram": SAMPLING.no_repeat_ngram,
    })
    found["all_methods"] = list(names())
    found["generators"] = [{"name": g, "note": GENERATOR_NOTES.get(g, "OpenAI-compatible")}
                           for g in generators()]
    found["ingest"] = {"methods": list(INGEST_METHODS), "chunk_size": CHUNK_SIZE,
                       "overlap": OVERLAP, "encoders": list(ENCODERS), "encoder": ENCODER,
                       "index_types": list(INDEX_TYPES)}
    return found
