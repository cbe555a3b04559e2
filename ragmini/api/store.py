"""`ragmini.Store`: one small object in front of the stages, and `ragmini.open`.

Every method mirrors the CLI command of the same name with the same defaults
(ragmini/api/defaults.py) and returns a record of ragmini/api/records.py. The
CLI, the HTTP server, the LangChain retriever and every other front end call
these methods and nothing below them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ragmini.api import defaults as D
from ragmini.api.checks import cutoffs_of
from ragmini.api.connection import Connection
from ragmini.api.errors import (
    NotFound,
    QueryError,
    RagminiError,
    StoreError,
    errors,
    no_string,
)
from ragmini.api.generators import shared_generator
from ragmini.api.lab_records import CorpusMap, Neighbors
from ragmini.api.records import (
    Answer,
    ChunkContext,
    CompareResult,
    DocumentFile,
    DocumentList,
    DocumentText,
    IngestResult,
    Methods,
    PathLike,
    QuerySets,
    Reindexed,
    Removal,
    SearchResult,
    Status,
    Uploads,
)
from ragmini.api.reports import AnswerEvalReport, EvalHistory, EvalReport
from ragmini.api.watching import Watchable

if TYPE_CHECKING:
    from eval.tuning import TuneResult
    from ingest.filters import Where

    from ragmini.langchain import RagminiRetriever


class Store(Connection, Watchable):
    """A ragmini store folder (SQLite + FAISS indexes), opened with `ragmini.open`.

    Every method mirrors the CLI command of the same name with the same defaults
    and returns a frozen record whose `to_dict()` is that command's `--json` body.
    Reads use one database connection per thread, so `search`, `compare` and `ask`
    may be called from several threads at once; writes (`ingest`, `remove`,
    `reindex`, `status(repair=True)`) take the store's writer lock, as the CLI does.
    Use it as a context manager, or call `close()`: later calls raise StoreError.
    """

    # -- reading ------------------------------------------------------------

    def search(self, query: str, method: str = D.METHOD, k: int = D.SEARCH_K,
               where: Sequence[str] | str | None = None) -> SearchResult:
        """The top-`k` chunks for `query` by `method` (`ragmini search`).

        Args:
            query: the text to search for.
            method: glove, glove-sif, sbert, bm25, tfidf, w2v, w2v-sif; a fusion
                (hybrid, hybrid-rrf, hybrid-wrrf) or hybrid:A+B.
            k: how many chunks to return (at least 1; more than the store holds
                returns every chunk).
            where: metadata filters, all of which must hold, e.g.
                ["type=md", "source=notes/**", "modified>=2026-01-01"].

        Returns a SearchResult; iterate it for the hits, best first. A query that
        finds nothing (no word of it in the method's vocabulary) returns no hits
        and its `reason`, rather than raising.

        Example:
            >>> [h.doc_id for h in store.search("bm25 ranking", method="bm25", k=2)]
            ['bm25.md', 'hybrid-search.html']
        """
        from ingest.filters import parse_where
        from retrieval.contract import check_queries
        from retrieval.methods import check_method

        check_queries([query], k)
        check_method(method)
        return self._search(query, method, k, parse_where(where))

    def _search(self, query: str, method: str, k: int, parsed: Where | None,
                explain: bool = True) -> SearchResult:
        """With `explain`, finding nothing is a result with its reason; without, a
        query no word of which the method knows raises NoMatch (compare's errors)."""
        from retrieval.contract import search_one
        from retrieval.methods import index_generation, select
        from retrieval.searchers import find, open_cached

        with errors():
            db = self._db()
            allowed = select(db, parsed)
            searcher = open_cached(db, method)  # kept open until a commit changes it
            built = index_generation(searcher, db)
            hits, reason = (find(searcher, query, k, allowed) if explain
                            else (search_one(searcher, query, k, allowed), None))
        return SearchResult.of(query, method, parsed, hits, searcher.behind, built, reason)

    def compare(self, query: str, methods: Sequence[str] | None = None,
                k: int = D.COMPARE_K,
                where: Sequence[str] | str | None = None) -> CompareResult:
        """Several methods' top-`k` for one query, and the chunks they agree on (the
        web page's Compare view, `POST /api/compare`).

        `methods` defaults to the store's dense default, bm25 and the default
        hybrid, those the store has (`defaults.compare_methods`). A method that
        cannot answer (no index) is reported in `errors` and leaves the others
        standing; an unknown name raises.
        """
        from ingest.filters import parse_where
        from retrieval.contract import check_queries
        from retrieval.methods import check_method, select

        check_queries([query], k)
        parsed = parse_where(where)
        with errors():
            select(self._db(), parsed)  # a filter naming an unknown key fails here, once
        if methods is None:
            with errors():
                methods = D.compare_methods(self._db().methods())
        chosen = list(dict.fromkeys(no_string(methods, "methods")))
        if not chosen:
            raise QueryError("no method given", param="methods")
        for m in chosen:
            check_method(m)
        results, failed = {}, {}
        for m in chosen:
            try:
                results[m] = self._search(query, m, k, parsed, explain=False)
            except RagminiError as exc:  # one method failing (no index) leaves the others
                failed[m] = exc
        return CompareResult(query, k, results, failed,
                             tuple(parsed.to_list()) if parsed else ())

    def ask(self, question: str, *, generator: str | None = D.GENERATOR,
            method: str = D.METHOD, k: int = D.ASK_K, strict: bool = D.STRICT,
            abstain: bool = D.ABSTAIN, temperature: float = D.SAMPLING.temperature,
            top_p: float = D.SAMPLING.top_p, top_k: int = D.SAMPLING.top_k,
            max_new_tokens: int = D.SAMPLING.max_new_tokens,
            seed: int | None = D.SAMPLING.seed,
            no_repeat_ngram: int = D.SAMPLING.no_repeat_ngram,
            where: Sequence[str] | str | None = None, allow_download: bool = False,
            fallback: bool = True, on_text: Callable[[str], None] | None = None,
            base_url: str | None = None, history: Sequence[dict] | None = None) -> Answer:
        """A cited answer to `question` from the top-`k` chunks (`ragmini ask`).

        Args:
            generator: "extractive" (no language model: the sources' best
                sentences, cited; fast and deterministic), "smollm2" (the packaged
                model on llama.cpp), "openai:MODEL" (an OpenAI-compatible server at
                `base_url`), a Hugging Face id or a local model folder; None is
                the configured default (`defaults.generator()`: extractive, or
                $RAGMINI_GENERATOR). "distilgpt2" falls back to the packaged
                SmolLM2 offline unless `fallback=False`; the answer's `generator`
                says so. Generators load once per process.
            strict: drop sentences the sources do not support; with none left,
                answer extractively.
            abstain: say "The documents do not answer this." instead of answering
                when the retrieval evidence says so.
            temperature, top_p, top_k, max_new_tokens, seed, no_repeat_ngram:
                sampling; temperature 0 is greedy, and a seed makes sampling
                repeatable.
            where: answer from the documents matching these filters only.
            allow_download: let a missing generator be fetched from the hub once.
            on_text: called with each piece of generated text as it is written.
            base_url: the server of an "openai:MODEL" generator (default:
                OPENAI_BASE_URL), e.g. "http://127.0.0.1:11434/v1".
            history: the conversation so far, oldest first, as
                [{"question": ..., "answer": ...}, ...]; a follow-up ("and how do I
                list it?") is made standalone from it before retrieval, and the
                answer's `searched_for` says what was searched.

        Example:
            >>> store.ask("What is product quantization?", generator="extractive").text
            >>> store.ask("How is it trained?", generator="extractive", history=[
            ...     {"question": "What is product quantization?", "answer": "..."}]).searched_for
        """
        from generation.answer import Sampling
        from generation.ask import ask as ask_store
        from generation.followup import check_history
        from ingest.filters import parse_where
        from retrieval.contract import check_queries
        from retrieval.methods import check_method

        check_queries([question], k)
        check_method(method)
        parsed = parse_where(where)
        sampling = Sampling(temperature, top_p, top_k, max_new_tokens, seed, no_repeat_ngram)
        turns = check_history(history)
        with errors():
            db = self._db()
            # Generator first: a missing model fails before any retrieval work.
            gen = shared_generator(generator, allow_download, fallback, base_url)
            done = ask_store(db, question, gen, method=method, k=k, sampling=sampling,
                             strict=strict, abstain=abstain, where=parsed, on_text=on_text,
                             history=turns)
        return Answer(done.answer, done.method, done.behind, gen.fallback_from,
                      done.searched_for, done.rewrite,
                      gen.name if gen.fallback_from else None)

    def status(self, repair: bool = False) -> Status:
        """Documents, chunks, methods and indexes, and whether every index agrees with
        the store (`ragmini status`). With `repair`, rebuild whatever disagrees or
        lags, from stored vectors (embedding only what is missing)."""
        from retrieval.status import check_store
        from retrieval.status import repair as repair_store

        with errors():
            db = self._db()
            report = check_store(db)
            repaired = False
            if repair and not (report.consistent and report.up_to_date):
                report, repaired = repair_store(db, progress=self.progress), True
        return Status(report, repaired)

    def documents(self, where: Sequence[str] | str | None = None, *, limit: int = 50,
                  offset: int = 0) -> DocumentList:
        """One page of the store's documents, newest first, with their chunk counts
        (`GET /api/documents`); `where` filters as in search."""
        from ingest.filters import parse_where

        if limit < 1 or offset < 0:
            raise QueryError("limit must be at least 1 and offset at least 0", param="limit")
        parsed = parse_where(where)
        with errors():
            total, page = self._db().document_list(parsed, offset, limit)
        return DocumentList(total, offset, limit, tuple(page),
                            tuple(parsed.to_list()) if parsed else ())

    def document(self, doc_id: str, *, pages: Sequence[int] | None = None,
                 source: str | None = None) -> DocumentText:
        """A stored document's text as ragmini read it (cleaned, extracted), rebuilt
        from its chunks, with where each chunk lies in it (`GET
        /api/documents/{doc_id}/text`); for a PDF, `pages=[first, last]` keeps the
        chunks on those pages. `source` picks one document when several share
        `doc_id` (without it such an id raises, listing them)."""
        from ingest.reading import document_text

        asked = None
        if pages is not None:
            bounds = [int(p) for p in no_string(pages, "pages")]
            if len(bounds) == 1:
                bounds *= 2
            if len(bounds) != 2 or bounds[0] < 1 or bounds[1] < bounds[0]:
                raise QueryError("pages takes [first, last] (1-based, first <= last)",
                                 param="pages")
            asked = (bounds[0], bounds[1])
        with errors():
            return DocumentText(document_text(self._db(), doc_id, source, asked))

    def document_file(self, doc_id: str, *, source: str | None = None) -> DocumentFile:
        """The original file of a stored document, opened for reading (`GET
        /api/documents/{doc_id}/file`): only a document's recorded source, still a
        regular file reached through no link. Close it when done."""
        from ingest.reading import open_document_file

        with errors():
            return DocumentFile(open_document_file(self._db(), doc_id, source))

    def chunk(self, chunk_id: int, neighbours: int = 1) -> ChunkContext:
        """A chunk (by the id hits carry) and `neighbours` chunks each side of it in its
        document: read around a hit."""
        if not isinstance(chunk_id, int) or isinstance(chunk_id, bool):
            raise QueryError("chunk_id takes a whole number", param="chunk_id")
        if not 0 <= neighbours <= 20:
            raise QueryError("neighbours must be between 0 and 20", param="neighbours")
        with errors():
            found = self._db().chunk_context(chunk_id, neighbours)
        if found is None:
            raise NotFound(f"no chunk with id {chunk_id}", param="chunk_id")
        return ChunkContext(found[0], tuple(found[1]))

    def methods(self) -> Methods:
        """The methods this store has indexed, the fusions it can run, and the
        defaults of search, compare and ask (`GET /api/methods`)."""
        with errors():
            return Methods(D.describe(self._db().methods()))

    def history(self, limit: int = D.HISTORY_LIMIT) -> EvalHistory:
        """Past evaluation runs recorded in the store, newest first (`eval history`)."""
        from eval.history import list_runs

        with errors():
            return EvalHistory(tuple(list_runs(self._db(), limit)))

    # -- writing ------------------------------------------------------------

    def ingest(self, paths: Sequence[PathLike], *, methods: Sequence[str] | None = None,
               chunk_size: int = D.CHUNK_SIZE, overlap: int = D.OVERLAP,
               index_type: str | None = None, prune: bool = False,
               max_file_mb: float = D.MAX_FILE_MB, follow_links: bool = False,
               encoder: str | None = None, extract_timeout: float = D.EXTRACT_TIMEOUT,
               vector_store: str | None = None, engine: str = "local",
               ray_address: str | None = None, include: Sequence[str] = (),
               workers: int | None = None, ocr: str = D.OCR, ocr_timeout: float = D.OCR_TIMEOUT,
               require_documents: bool = True, progress: bool | None = None) -> IngestResult:
        """Add folders or files (.txt .md .html, PDF, DOCX, EPUB, ODT, RSS/Atom feeds,
        BEIR corpus.jsonl, any of them .gz/.bz2/.xz-compressed; PNG/JPEG/TIFF), creating
        the store if needed (`ragmini ingest`).

        Re-running it is cheap: unchanged documents are skipped, changed ones
        re-chunked and re-embedded, and every method's index brought up to date.

        Args:
            paths: a list of files and folders.
            methods: methods to index; default glove, glove-sif, sbert, bm25, tfidf
                (`retrieval.methods.DEFAULT_INGEST`).
            chunk_size, overlap: chunk length and overlap in MiniLM tokens (a store
                keeps the chunking it was first ingested with).
            index_type: FAISS index of the dense methods: flat (exact, default),
                hnsw, ivf-pq or sq8; kept for later runs.
            prune: remove stored documents whose files under `paths` are gone.
            max_file_mb: skip larger files. follow_links: follow symbolic links.
            encoder: how sbert vectors are made: "onnx-int8" (the default for a new
                store), "onnx" or "torch"; naming another than the store's re-embeds.
            extract_timeout: seconds allowed to read one PDF, DOCX, EPUB or ODT file.
            vector_store: "faiss" (default), "milvus" (Milvus Lite in the store folder)
                or a Milvus server URI ("milvus://HOST:PORT", "http(s)://..."); kept.
            engine: "local", or "ray" to chunk and embed as a Ray Data pipeline
                (`ray_address` names a cluster; else a local Ray runs for the call).
            include: globs ("*.c", "Makefile", "src/**") of other files to read as
                plain text.
            workers: processes reading and extracting files (None: by the work found).
            ocr: OCR of scanned PDF pages and images: "auto" (pages without text),
                "always" or "never"; `ocr_timeout` seconds a page (docs/ocr.md).
            require_documents: False returns, not raises, "nothing could be read".
            progress: show progress bars (default: the store's setting, off).

        The result's `report` times each stage (`profile_table()`) and counts the
        files not read by suffix (`not_read_line()`).

        Example:
            >>> store.ingest(["corpus/docs"], methods=["sbert", "bm25"]).report.new
            41
        """
        from ingest.chunk import ChunkConfig
        from ingest.ocr import OcrOptions
        from retrieval.ingesting import ingest_and_index
        from retrieval.methods import parse_methods

        chosen = parse_methods(no_string(methods, "methods") if methods is not None
                               else D.INGEST_METHODS)
        items = [Path(p) for p in no_string(paths, "paths")]
        if not items:
            raise QueryError("paths names no file or folder", param="paths")
        config = ChunkConfig(size=chunk_size, overlap=overlap)
        started = time.perf_counter()
        with errors():
            options = OcrOptions(mode=ocr, page_timeout=ocr_timeout)
            done = ingest_and_index(self._db(create=True), items, chosen, config=config,
                                    index_type=index_type, progress=self._progress(progress),
                                    max_bytes=int(max_file_mb * 2**20),
                                    follow_links=follow_links, prune=prune,
                                    encoder=encoder, extract_timeout=extract_timeout,
                                    vector_store=vector_store, engine=engine,
                                    ray_address=ray_address, include=tuple(include),
                                    workers=workers, ocr=options,
                                    require_documents=require_documents)
        return IngestResult.of(done, time.perf_counter() - started)

    def remove(self, paths: Sequence[PathLike], *, missing_ok: bool = False) -> Removal:
        """Remove the documents of files (or everything under folders), which need not
        exist any more (`ragmini remove`). Indexes are rebuilt from stored vectors;
        no model loads; a path no document comes from raises unless `missing_ok`."""
        from retrieval.ingesting import remove_and_index

        with errors():
            db = self._db()
            removed = remove_and_index(db, [Path(p) for p in no_string(paths, "paths")],
                                       missing_ok=missing_ok)
            return Removal(tuple(removed), db.count("documents"))

    def upload(self, files: Sequence[tuple[str | None, BinaryIO]], *,
               max_file_mb: float = D.MAX_FILE_MB) -> Uploads:
        """Keep uploaded files in the store's uploads/ folder and ingest them (`POST
        /api/documents`): `files` is (name, readable binary) pairs. Each gets the id
        `uploads/NAME`, never one another document holds; a name uploaded again
        replaces that upload; a file ingest cannot read is not kept."""
        from retrieval.ingesting import ingest_uploads

        with errors(), self._uploads:  # names are picked before ingest's writer lock
            return Uploads(ingest_uploads(self._db(create=True), list(files),
                                          max_bytes=int(max_file_mb * 2**20)))

    def delete(self, doc_id: str, *, source: str | None = None) -> Removal:
        """Remove the one document `doc_id` names (`DELETE /api/documents/{doc_id}`),
        and its file if it was uploaded. An id several documents share is refused
        (Ambiguous, listing their sources) unless `source` names one."""
        from retrieval.ingesting import remove_document

        with errors():
            db = self._db()
            removed = remove_document(db, doc_id, source)
            return Removal(tuple(removed), db.count("documents"))

    def preload(self, generator: str | None = None) -> None:
        """Load now what the first request would: every indexed method's model and the
        generator (default: the default one)."""
        from retrieval.methods import get_embedder

        with errors():
            db = self._db()
            for method in db.methods():
                try:
                    get_embedder(method, db)
                except QueryError:
                    pass  # bm25 and the like have no model
        shared_generator(generator or D.generator())

    def reindex(self, methods: Sequence[str] | None = None, index_type: str | None = None,
                vector_store: str | None = None) -> Reindexed:
        """Rebuild indexes from the vectors stored with the chunks, no model time
        (`ragmini reindex`); `index_type` switches the dense methods (flat, hnsw,
        ivf-pq, sq8), `vector_store` moves them (faiss, milvus, a server URI)."""
        from retrieval.indexing import reindex as rebuild

        chosen = no_string(methods, "methods") if methods else ()
        with errors():
            db = self._db()
            with db.writer_lock():
                return Reindexed(tuple(rebuild(db, chosen, index_type, vector_store)))

    # -- evaluation -----------------------------------------------------------

    def evaluate(self, queries: PathLike | None = None, *, methods: Sequence[str] | None = None,
                 ks: Sequence[int] | None = None, seed: int = 0, resamples: int = 10_000,
                 where: Sequence[str] | str | None = None,
                 query_set: str | None = None) -> EvalReport:
        """Recall@k, precision@k, MRR@10, nDCG@10 and MAP per method on labelled
        `queries` (default corpus/queries.jsonl, written for the bundled corpus), with
        paired tests between methods (`ragmini eval`); see `ragmini.evaluate` for the
        arguments. `query_set` names one of `query_sets()` instead of a file. The run
        is recorded in the store's history."""
        from eval import runs as eval_runs

        chosen = no_string(methods, "methods") if methods is not None else None
        cutoffs = cutoffs_of(ks)
        with errors():
            self._db()  # the one "no store here" message
            run = eval_runs.evaluate_store(self.path, Path(queries) if queries else None,
                                           cutoffs, chosen, seed, resamples,
                                           where=[where] if isinstance(where, str) else where,
                                           query_set=query_set)
        return EvalReport(run)

    def query_sets(self) -> QuerySets:
        """The labelled query sets `evaluate(query_set=...)` can use: the bundled one and
        each split of every BEIR folder whose corpus this store holds."""
        from eval.querysets import DEFAULT_QUERY_SET, known_query_sets

        with errors():
            return QuerySets(DEFAULT_QUERY_SET, tuple(known_query_sets(self._db())))

    def evaluate_answers(self, answers: PathLike | None = None, *,
                         generators: Sequence[str] = D.ANSWER_EVAL_GENERATORS,
                         split: str = "test", limit: int | None = None, k: int = D.ASK_K,
                         strict: bool = D.STRICT, abstain: bool = D.ABSTAIN, seed: int = 0,
                         resamples: int = 10_000, progress: bool | None = None
                         ) -> AnswerEvalReport:
        """Answer quality per generator on `answers` (jsonl of id, text, relevant,
        answer; default corpus/answers.jsonl): `ragmini eval answers`; see
        `ragmini.evaluate_answers`."""
        from eval.runs import evaluate_answer_run

        names = no_string(generators, "generators")
        with errors():
            self._db()
            result = evaluate_answer_run(store_path=self.path,
                                         answers_path=Path(answers) if answers else None,
                                         generators=names, split=split, limit=limit, k=k,
                                         strict=strict, abstain=abstain, seed=seed,
                                         resamples=resamples,
                                         progress=self._progress(progress))
        return AnswerEvalReport(result)

    def tune(self, fusion: str, queries: PathLike | None = None, *,
             record: bool = True, progress: bool | None = None) -> TuneResult:
        """Fit a fusion's weights (hybrid, hybrid-wrrf) on the store's labelled queries
        and, with `record`, keep them for later searches (`ragmini eval --tune`)."""
        from eval import runs as eval_runs

        with errors():
            self._db()
            return eval_runs.tune(fusion, store_path=self.path,
                                  queries_path=Path(queries) if queries else None,
                                  record=record, progress=self._progress(progress))

    # -- exploring --------------------------------------------------------------

    def neighbors(self, word: str, n: int = 5) -> Neighbors:
        """The `n` words nearest to `word` under the word2vec model trained on this
        store's chunks (`explore neighbors --method w2v`; needs the w2v method)."""
        from retrieval.geometry import neighbors as nearest
        from retrieval.w2v import w2v_for_store

        with errors():
            embedder = w2v_for_store(self._db(), train=False)
        found = nearest(embedder.keyed_vectors, word, n, vocabulary="store's w2v")
        return Neighbors(word, "w2v", embedder.model, tuple(found))

    def corpus_map(self, method: str = D.METHOD, plot: PathLike | None = None) -> CorpusMap:
        """The store's chunks in 2-D from their stored vectors, coloured by document
        (`explore map`); no model loads. `plot` writes a PNG."""
        from retrieval.geometry import corpus_map

        if method not in ("glove", "sbert"):
            raise QueryError(f"corpus_map takes glove or sbert, not '{method}'",
                             param="method")
        with errors():
            db = self._db()
            ids, vectors = db.vectors(method)
            if not len(ids):
                raise QueryError(f"the store has no {method} vectors; ingest with the "
                                 f"{method} method (`ragmini ingest PATH --methods {method}`)",
                                 param="method")
            rows = db.chunk_rows(ids.tolist())
        doc_ids = [rows[int(i)].doc_id for i in ids]
        result = corpus_map(vectors, doc_ids)
        if plot:
            from eval.plots import plot_corpus_map

            plot_corpus_map(result.pca, result.tsne, doc_ids, Path(plot), method=method,
                            same_doc_neighbour=result.same_doc_neighbour, chance=result.chance)
        return CorpusMap(method, tuple(doc_ids), result.same_doc_neighbour, result.chance,
                         result.pca, result.tsne, Path(plot) if plot else None)

    # -- LangChain ----------------------------------------------------------------

    def as_langchain_retriever(self, method: str = D.METHOD, k: int = D.SEARCH_K,
                               where: Sequence[str] | str | None = None) -> RagminiRetriever:
        """A LangChain `BaseRetriever` over this store: `invoke(query)` returns
        `Document`s whose `page_content` is the chunk text and whose `metadata`
        holds source, doc_id, title, chunk_id, score, rank, method and the chunk's
        position (and a page span, when chunks carry one). Needs langchain-core.

        Example:
            >>> retriever = store.as_langchain_retriever(method="bm25", k=3)
            >>> [d.metadata["doc_id"] for d in retriever.invoke("bm25")]
            ['bm25.md', 'bm25.md', 'hybrid-search.html']
        """
        from ingest.filters import parse_where
        from ragmini.langchain import RagminiRetriever
        from retrieval.methods import check_method

        check_method(method)
        if k < 1:
            raise QueryError(f"k must be at least 1 (got {k})", param="k")
        parse_where(where)  # a malformed filter fails now, not at the first query
        return RagminiRetriever(store=self, method=method, k=k,
                                where=(where,) if isinstance(where, str) else
                                tuple(where) if where else None)


def open(path: PathLike | None = None, *, progress: bool = False) -> Store:  # noqa: A001
    """Open the ragmini store in folder `path` for searching, asking, ingesting and
    evaluating from Python.

    Args:
        path: the store folder; default `$RAGMINI_STORE`, else `.ragmini` (as the
            CLI's `--store`). The folder need not hold a store yet: `ingest`
            creates one, and reading a store that does not exist raises StoreError.
        progress: show progress bars during ingest and repairs (off by default;
            each call's `progress=` overrides it).

    Returns a `Store`. Opening loads no model and imports no deep-learning
    library; an existing store is checked (its schema version, a damaged file)
    here, so a bad path fails now with StoreError.

    Example:
        >>> import ragmini
        >>> store = ragmini.open("my-store")
        >>> store.ingest(["corpus/docs"])
        >>> store.search("how does BM25 rank documents?", k=3)[0].doc_id
        'bm25.md'
    """
    chosen = D.store_path(path)
    if chosen.exists() and not chosen.is_dir():
        raise StoreError(f"{chosen} exists and is not a folder; choose another store path")
    store = Store(chosen, progress=progress)
    if store.exists:
        store._db()  # fail now on another schema version or a damaged database
    return store

