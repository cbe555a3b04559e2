"""The `ragmini` command: flags in, one call to the public Python API (ragmini.api),
text or the record's `to_dict()` (`--json`) out.

Defaults come from ragmini.api.defaults, so `--help` shows the API's own. Heavy
libraries load inside the API calls, so `--help` stays quick. User mistakes
(RagminiError) become one line on stderr and exit status 1.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import click

import ragmini
from ragmini import __version__
from ragmini.api import defaults as D
from ragmini.api.errors import RagminiError
from ragmini.clitools import emit as _emit
from ragmini.clitools import json_option as _json_option
from ragmini.clitools import store_option as _store_option

METHOD_HELP = D.METHOD_HELP
# Library messages name parameters; a user of the CLI reads its flags.
FLAGS = {"k": "-k", "temperature": "--temperature", "top_p": "--top-p", "top_k": "--top-k",
         "max_new_tokens": "--max-new-tokens", "no_repeat_ngram": "--no-repeat-ngram",
         "chunk_size": "--chunk-size", "overlap": "--overlap", "generator": "--generator", "base_url": "--base-url", "queries": "--queries",
         "methods": "--methods", "where": "--where", "tune": "--tune",
         "ocr": "--ocr", "ocr_timeout": "--ocr-timeout"}


def _flagged(exc: RagminiError) -> str:
    """The message with its parameter spelled as this CLI's flag."""
    import re

    message, flag = str(exc), FLAGS.get(getattr(exc, "param", None) or "")
    if not flag:
        return message
    if message.startswith(exc.param + " "):
        message = flag + message[len(exc.param):]
    if "_" in exc.param:  # unambiguous anywhere in the text
        message = re.sub(rf"\b{exc.param}\b", flag, message)
    return message


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ragmini")
def cli() -> None:
    """Local, offline semantic search and RAG over a folder of documents.

    \b
    Quick start:
      ragmini ingest corpus/
      ragmini search "how does BM25 rank documents?"
      ragmini ask "why normalise embeddings before cosine search?"
      ragmini eval
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_store_option
@click.option("--methods", default=",".join(D.INGEST_METHODS), show_default=True,
              help="Comma-separated methods to index: " + METHOD_HELP)
@click.option("--chunk-size", default=D.CHUNK_SIZE, show_default=True,
              help="Chunk length in MiniLM tokens (at most 254).")
@click.option("--overlap", default=D.OVERLAP, show_default=True,
              help="Tokens shared by neighbouring chunks.")
@click.option("--index", "index_type", type=click.Choice(D.INDEX_TYPES),
              default=None, help="FAISS index type for the dense methods (kept for later "
              "runs; default flat, exact).")
@click.option("--encoder", type=click.Choice(D.ENCODERS), default=None,
              help="How sbert vectors are made: onnx-int8 (default for a new store: ONNX "
              "Runtime, int8 weights, no torch at query time), onnx (fp32) or torch "
              "(sentence-transformers). A store keeps the encoder its vectors came from; "
              "naming another re-embeds them.")
@click.option("--vector-store", default=None, metavar="STORE",
              help="Where dense vectors are searched: faiss (default: files in the store), "
              "milvus (Milvus Lite in the store folder), or milvus://HOST:PORT / "
              "http(s)://HOST:PORT for a Milvus server (token from RAGMINI_MILVUS_TOKEN). "
              "Kept for later runs.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="ray: chunk and embed as a Ray Data pipeline (a "
              "local Ray is started and stopped unless --ray-address names a cluster).")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="A running Ray cluster for --engine ray (e.g. ray://HEAD:10001).")
@click.option("--prune", is_flag=True, help="Remove stored documents whose files are gone.")
@click.option("--max-file-mb", default=D.MAX_FILE_MB, show_default=True,
              help="Skip larger files.")
@click.option("--extract-timeout", default=D.EXTRACT_TIMEOUT, show_default=True,
              metavar="SECONDS",
              help="Give up on a PDF, DOCX, EPUB or ODT file whose text takes longer.")
@click.option("--follow-links", is_flag=True, help="Follow symbolic links (off: they can loop).")
@click.option("--include", "include", multiple=True, metavar="GLOB",
              help="Also read files matching GLOB as plain text (source code, config "
              "files, files without a suffix), e.g. '*.c', 'Makefile', 'src/**'. Repeatable.")
@click.option("--workers", type=int, default=None, metavar="N",
              help="Processes reading and extracting files (default: by the work found).")
@click.option("--ocr", type=click.Choice(D.OCR_MODES), default=D.OCR, show_default=True,
              help="Tesseract OCR of scanned PDF pages and PNG, JPEG, TIFF images: auto "
              "(only pages without a text layer), always (every PDF page) or never.")
@click.option("--ocr-timeout", default=D.OCR_TIMEOUT, show_default=True, metavar="SECONDS",
              help="Give up on a page whose OCR takes longer.")
@click.option("--profile", is_flag=True, help="Print seconds per stage and per format.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@_json_option
def ingest(paths, store, methods, chunk_size, overlap, index_type, encoder, vector_store,
           engine, ray_address, prune, max_file_mb, extract_timeout, follow_links, include,
           workers, ocr, ocr_timeout, profile, no_progress, as_json):
    """Add folders or files (.txt .md .html, PDF, DOCX, EPUB, ODT, RSS/Atom feeds, BEIR
    corpus.jsonl, any of them .gz/.bz2/.xz-compressed; scans and images by OCR) to the store.

    Re-running it is cheap: unchanged documents are skipped, changed ones
    re-chunked and re-embedded, and every method's index brought up to date.

    \b
    Examples:
      ragmini ingest corpus/
      ragmini ingest notes/ feed.xml --methods sbert --store /tmp/notes-store
      ragmini ingest corpus/ --vector-store milvus --engine ray
    """
    with ragmini.open(store, progress=not no_progress) as st:
        done = st.ingest(list(paths), methods=_split(methods), chunk_size=chunk_size,
                         overlap=overlap, index_type=index_type, prune=prune,
                         max_file_mb=max_file_mb, follow_links=follow_links, encoder=encoder,
                         extract_timeout=extract_timeout, vector_store=vector_store,
                         engine=engine, ray_address=ray_address,
                         include=include, workers=workers, ocr=ocr, ocr_timeout=ocr_timeout)
    if as_json:
        _emit(done.to_dict())
        return
    report = done.report
    for path, reason in done.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    for n in done.notes:
        click.echo(f"note: {n}", err=True)
    # Chunks, not chunk x method vectors: each method embeds the same new chunks.
    chunks_embedded = max((r.embedded for r in done.methods), default=0)
    by = [r.method for r in done.methods if r.embedded]
    click.echo(f"{report.new} new, {report.changed} changed, {report.removed} removed, "
               f"{report.unchanged} unchanged; {chunks_embedded} "
               f"chunk{'' if chunks_embedded == 1 else 's'} embedded"
               + (f" (by {', '.join(by)})" if len(by) > 1 else ""))
    for r in done.methods:
        empty = f", {r.empty} chunks with no known word left out" if r.empty else ""
        click.echo(f"  {r.method:<9} {r.n_vectors} vectors in {r.seconds:.1f}s{empty}")
    click.echo(f"store {store}: {done.documents} documents, {done.chunks} chunks "
               f"({done.seconds:.1f}s)")
    if report.not_read_line():
        click.echo(report.not_read_line())
    if profile:
        click.echo(report.profile_table())


def _split(value: str) -> list[str]:
    """A comma-separated flag as a list."""
    return [v.strip() for v in value.split(",") if v.strip()]


WHERE_HELP = ("Only documents whose metadata match: KEY=VALUE (a glob for source, e.g. "
              "'source=notes/**'), KEY!=VALUE, KEY<VALUE / KEY>=VALUE for numbers and dates, "
              "KEY~TEXT for a substring. Keys: source, type, title, modified, size, and front "
              "matter or BEIR metadata keys. Repeatable; all must hold.")


def _where_option(f):
    return click.option("--where", "where", multiple=True, metavar="KEY OP VALUE",
                        help=WHERE_HELP)(f)


@cli.command()
@click.argument("query")
@click.option("--method", default=D.METHOD, show_default=True, help=METHOD_HELP)
@click.option("-k", "k", default=D.SEARCH_K, show_default=True, help="Number of chunks to return.")
@_where_option
@_store_option
@_json_option
def search(query, method, k, where, store, as_json):
    """Rank the store's chunks against QUERY.

    \b
    Examples:
      ragmini search "what does top-p sampling do?"
      ragmini search "word vectors" --method glove -k 3 --json
      ragmini search "index types" --where 'type=md' --where 'tags=faiss'
    """
    with ragmini.open(store) as st:
        found = st.search(query, method=method, k=k, where=list(where))
    _note_behind(method, found.behind)
    if as_json:
        _emit(found.to_dict())
        return
    if found.reason:  # found nothing: say why, and fail as a script expects
        raise RagminiError(found.reason)
    if found.where and not found.hits:
        click.echo(f"no chunk of a document matching {' and '.join(found.where)} matches "
                   "the query", err=True)
    for h in found.hits:
        click.echo(f"{h.rank:>2}. {h.score:.3f}  {h.cite}  ({h.title})")
        click.echo(f"    {_snippet(h.text)}")


def _note_behind(method: str, behind: int) -> None:
    if behind:
        click.echo(f"note: the {method} index is {behind} commit(s) behind the "
                   "store (an ingest is running or was interrupted); results show the state "
                   "before it. `ragmini ingest` or `ragmini status --repair` brings it up to date.",
                   err=True)


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rsplit(" ", 1)[0] + " …"


@cli.command()
@click.argument("question")
@click.option("--method", default=D.METHOD, show_default=True, help=METHOD_HELP)
@click.option("-k", "k", default=D.ASK_K, show_default=True, help="Chunks given to the generator.")
@click.option("--generator", default=None, show_default="extractive, or $RAGMINI_GENERATOR",
              help="'extractive' (no language model: the sources' best sentences), 'smollm2' "
                   "(the packaged model, on llama.cpp), 'openai:MODEL' (an OpenAI-compatible "
                   "server, see --base-url), a Hugging Face id or a local model folder.")
@click.option("--base-url", default=None,
              help="The OpenAI-compatible server of an openai:MODEL generator "
                   "(default: $OPENAI_BASE_URL), e.g. http://127.0.0.1:11434/v1 for Ollama.")
@click.option("--temperature", default=D.SAMPLING.temperature, show_default=True,
              help="0 is greedy decoding.")
@click.option("--top-p", default=D.SAMPLING.top_p, show_default=True)
@click.option("--top-k", default=D.SAMPLING.top_k, show_default=True, help="0 is off.")
@click.option("--max-new-tokens", default=D.SAMPLING.max_new_tokens, show_default=True)
@click.option("--seed", type=int, default=D.SAMPLING.seed,
              help="Same seed, same sampled answer.")
@click.option("--no-repeat-ngram", default=D.SAMPLING.no_repeat_ngram, show_default=True,
              help="Never repeat an n-gram of this size (0 is off); stops small models looping.")
@click.option("--allow-download", is_flag=True,
              help="Let a missing --generator be fetched from the Hugging Face hub once.")
@click.option("--no-fallback", is_flag=True,
              help="Fail if --generator is unavailable instead of using the packaged SmolLM2.")
@click.option("--strict/--no-strict", default=D.STRICT, show_default=True,
              help="Drop sentences the sources do not support; if none is left, answer "
                   "extractively. --no-strict shows the generator's text with each "
                   "unsupported sentence marked.")
@click.option("--abstain/--no-abstain", default=D.ABSTAIN, show_default=True,
              help="Say so, instead of answering, when the documents do not hold an answer.")
@_where_option
@_store_option
@_json_option
def ask(question, method, k, generator, base_url, temperature, top_p, top_k, max_new_tokens,
        seed, no_repeat_ngram, allow_download, no_fallback, strict, abstain, where, store,
        as_json):
    """Answer QUESTION from the store's top-k chunks, citing them as [n].

    Each sentence of the answer is checked against the sources it cites and
    marked when they do not support it. When the retrieval evidence says the
    documents do not hold an answer, ragmini says so instead of generating one.

    \b
    Examples:
      ragmini ask "why does retrieval need chunking?"
      ragmini ask "what is product quantization?" --strict
      ragmini ask "what is nucleus sampling?" --generator extractive --json
      ragmini ask "what is nucleus sampling?" --temperature 0.7 --seed 1
    """
    with ragmini.open(store) as st:
        done = st.ask(question, generator=generator, method=method, k=k, strict=strict,
                      abstain=abstain, temperature=temperature, top_p=top_p, top_k=top_k,
                      max_new_tokens=max_new_tokens, seed=seed,
                      no_repeat_ngram=no_repeat_ngram, where=list(where),
                      allow_download=allow_download, fallback=not no_fallback,
                      base_url=base_url)
    _note_behind(method, done.behind)
    if done.fallback_from:
        click.echo(f"note: generator '{done.fallback_from}' is not available offline; using "
                   f"the packaged {done.stand_in} (--allow-download fetches it, "
                   "--no-fallback makes this an error)", err=True)
    if as_json:
        _emit(done.to_dict())
        return
    _print_answer(done)
    for note in done.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"(generator: {done.generator})", err=True)


def _print_answer(result) -> None:
    """An answer for people: a sentence a line with its support mark, then the sources."""
    if result.abstained:
        click.echo(f"{result.text} (confidence the documents hold an answer: "
                   f"{result.abstain_score:.2f}, below {result.abstain_threshold:.2f}; "
                   "--no-abstain answers anyway)")
        click.echo("")
        click.echo("Closest sources:")
    else:
        marks = {"supported": "  ", "weak": "~ ", "unsupported": "✗ "}
        if result.sentences:
            # One sentence a line, so a mark sits next to what it judges.
            for s in result.sentences:
                click.echo(f"{marks[s.support.label]}{s.text}")
            click.echo("")
            click.echo(result.summary
                       + ("; ✗ = not supported by the sources" if any(
                           s.support.label == "unsupported" for s in result.sentences) else ""))
        else:
            click.echo(result.text or "(the model produced no text)")
        click.echo("")
        click.echo("Sources:")
    for s in result.sources:
        mark = "  (cited)" if s.n in result.citations else ""
        click.echo(f"  [{s.n}] {s.cite} - {s.title}{mark}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_store_option
@_json_option
def remove(paths, store, as_json):
    """Remove the documents of PATHS (files, or everything under folders) from the store.

    The files need not exist any more. Indexes are rebuilt from stored vectors;
    no model is loaded.

    \b
    Example:
      ragmini remove corpus/docs/old-notes.md
    """
    with ragmini.open(store) as st:
        done = st.remove(list(paths))
    if as_json:
        _emit(done.to_dict())
        return
    click.echo(f"removed {len(done.removed)} document(s); {done.documents} left")


@cli.command()
@click.option("--method", "methods", default=None,
              help="Comma-separated methods to rebuild (default: all in the store).")
@click.option("--index", "index_type", type=click.Choice(D.INDEX_TYPES),
              default=None, help="Switch the dense methods to this index type.")
@click.option("--vector-store", default=None, metavar="STORE",
              help="Move the dense methods to faiss, milvus (Lite) or a Milvus server URI.")
@_store_option
@_json_option
def reindex(methods, index_type, vector_store, store, as_json):
    """Rebuild indexes from the vectors stored with the chunks (no model time).

    \b
    Examples: try an approximate index, or Milvus, without re-embedding anything
      ragmini reindex --index hnsw
      ragmini reindex --vector-store milvus
    """
    with ragmini.open(store) as st:
        done = st.reindex(_split(methods) if methods else None, index_type, vector_store)
    if as_json:
        _emit(done.to_dict())
        return
    for m, r in done.to_dict()["methods"].items():
        extra = (f"; {r['unembedded']} chunks have no vector yet (run `ragmini ingest`)"
                 if r["unembedded"] else "")
        click.echo(f"{m}: {r['vectors']} vectors indexed in {r['seconds']:.2f}s{extra}")


@cli.command()
@click.option("--repair", is_flag=True,
              help="Rebuild whatever disagrees, from stored vectors (embedding only what is missing).")
@_store_option
@_json_option
def status(repair, store, as_json):
    """Documents, chunks, methods and indexes, and whether they all agree.

    Exit status 1 when an index disagrees with the store (and --repair was not given).
    """
    with ragmini.open(store, progress=not as_json) as st:
        done = st.status(repair=repair)
    if as_json:
        _emit(done.to_dict())
    else:
        _print_status(done.report, done.repaired)
    if not done.consistent:
        sys.exit(1)


def _print_status(report, repaired: bool) -> None:
    chunking = report.chunking or {}
    click.echo(f"store {report.root} (schema {report.schema_version}, generation "
               f"{report.generation}): {report.documents} documents, {report.chunks} chunks"
               + (f", chunked {chunking.get('size')}/{chunking.get('overlap')} tokens"
                  if chunking else ""))
    if report.last_ingest_line():
        click.echo(report.last_ingest_line())
    for m in report.methods:
        state = "ok" if m.consistent else "DISAGREES"
        if m.consistent and m.behind:
            state = f"ok, {m.behind} commit(s) behind the store"
        where = (f"{m.index_file_bytes / 1024:.0f} KiB index" if m.backend == "files"
                 else f"in {m.backend}")
        click.echo(f"  {m.method:<6} {m.vectors} vectors, {m.empty} empty, "
                   f"{where}: {state}  [{m.model}]")
        if m.unembedded:
            click.echo(f"         {m.unembedded} chunks not embedded yet")
        for p in m.problems:
            click.echo(f"         problem: {p}")
    if repaired:
        click.echo("repaired: indexes rebuilt from stored vectors")
    elif not report.consistent:
        click.echo("run `ragmini status --repair` to rebuild from stored vectors")
    elif not report.up_to_date:
        click.echo("run `ragmini ingest` (or `ragmini status --repair`) to catch up")


@cli.command()
@_store_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --token.")
@click.option("--port", default=8000, show_default=True)
@click.option("--token", default=lambda: os.environ.get("RAGMINI_TOKEN"),
              show_default="$RAGMINI_TOKEN",
              help="Require `Authorization: Bearer TOKEN` on every /api/ request.")
@click.option("--preload", is_flag=True, help="Load the models before the first request.")
@click.option("--max-upload-mb", default=20.0, show_default=True, help="Largest upload a file.")
@click.option("--cors-origin", default=None, help="Allow this browser origin (CORS is off).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this Host name (repeatable; loopback names "
                   "and the bound address are allowed, anything else is refused).")
@click.option("--watch", "watch_paths", multiple=True, type=click.Path(path_type=Path),
              metavar="PATH", help="Keep the store in sync with PATH as its files change, "
              "as `ragmini watch` does (repeatable); the page's counts follow it.")
def serve(store, host, port, token, preload, max_upload_mb, cors_origin, allow_hosts,
          watch_paths):
    """Serve the HTTP API and the web page for the store.

    \b
    The page is at http://HOST:PORT/, the API under /api/, its docs at /docs, the
    OpenAI-compatible endpoint under /v1/ and the MCP server at /mcp.
    Example:
      ragmini serve --preload
      RAGMINI_TOKEN=secret ragmini serve --host 0.0.0.0 --allow-host myhost.lan
    """
    import ipaddress

    import uvicorn

    from ragmini.server.app import Settings, create_app
    from ragmini.server.guard import http_protocol

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not token:
        raise RagminiError(f"refusing to serve on {host} without a token: anyone who can reach "
                           "it could read and change the store; pass --token (or set "
                           "RAGMINI_TOKEN), or bind 127.0.0.1")
    if not watch_paths:  # with --watch, the first sync makes the store
        ragmini.open(store).methods()  # a missing store fails here, in one line
    settings = Settings(Path(store), token or None, int(max_upload_mb * 2**20), cors_origin,
                        host, tuple(allow_hosts))
    watching = None
    if watch_paths:  # before the server starts: a second watcher of the store fails here
        from ragmini.watch_cli import log_event

        with ragmini.open(store) as st:
            watching = st.watch(list(watch_paths), on_event=log_event)
    app = create_app(settings, preload=preload, watching=watching)
    click.echo(f"ragmini serving {store} on http://{host}:{port}/ (API docs at /docs; "
               "Ctrl-C stops)", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", http=http_protocol())
    finally:
        if watching is not None:
            watching.stop()
        app.state.jobs.close()
        app.state.store.close()


@cli.command()
@_store_option
@click.option("--allow-write", multiple=True, metavar="FOLDER",
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Add `ingest` and `remove` tools that act only under FOLDER (repeatable). "
                   "Without it every tool is read-only.")
def mcp(store, allow_write):
    """Serve the store to MCP clients (agents) over stdio.

    Tools: search, get_document, get_chunk, list_documents, ask (a cited answer
    with per-sentence support labels, or an abstention); the ragmini://status
    resource. Register it in a client's configuration as the command
    `ragmini mcp --store /path/to/store` (docs/mcp.md has the JSON). `ragmini serve`
    serves the same tools over HTTP at /mcp.

    \b
    Example:
      ragmini mcp --store .ragmini
      ragmini mcp --store notes-store --allow-write ~/notes
    """
    from ragmini.mcp_server import run_stdio

    run_stdio(Path(store), allow_write)


@cli.group()
def datasets() -> None:
    """Build benchmark datasets in BEIR layout for `ragmini eval --dataset`."""


@datasets.command("build")
@click.argument("name", type=click.Choice(["manpages", "faq"]))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--packages", default=None,
              help="Comma-separated Debian packages (default: the 16 of the benchmark).")
@click.option("--no-update", is_flag=True, help="Skip `apt-get update`.")
@click.option("--work", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Keep downloads and unpacked packages here (default: a temporary folder).")
@click.option("--no-progress", is_flag=True)
@_json_option
def datasets_build(name, out, packages, no_update, work, no_progress, as_json):
    """Build NAME into --out. `manpages`: Debian man pages, the apropos task.
    `faq`: the zsh FAQ and gitfaq(7) as questions with reference answers, a
    quarter of them unanswerable (answers.jsonl), for `eval answers`.

    Downloads packages with apt-get (never installs them), renders pages with
    man, and writes corpus.jsonl, queries.jsonl, qrels/{dev,test}.tsv and
    metadata.json.

    \b
    Example:
      ragmini datasets build manpages --out data/manpages
      ragmini eval --dataset data/manpages --split dev
      ragmini datasets build faq --out data/faq
    """
    built = ragmini.build_dataset(name, out, packages=_split(packages) if packages else None,
                                  update=not no_update, work=work,
                                  progress=not no_progress)
    meta = built.metadata
    if as_json:
        _emit(built.to_dict())
        return
    if name == "faq":
        click.echo(f"{meta['questions']} questions ({meta['answerable']} answerable, "
                   f"{meta['unanswerable']} unanswerable), splits {meta['splits']} -> {out}")
        return
    click.echo(f"{meta['pages']} pages, {meta['queries']['dev']} dev and {meta['queries']['test']} "
               f"test queries (median {meta['median_words_per_page']} words a page; "
               f"{len(meta['dropped_index_pages'])} index pages dropped; "
               f"{meta['queries_verbatim_in_page']} queries occur verbatim in their page) -> {out}")


def _register_groups() -> None:
    from ragmini.chat_cli import chat
    from ragmini.eval_cli import eval_group
    from ragmini.explore_cli import explore
    from ragmini.watch_cli import watch_command

    cli.add_command(eval_group)
    cli.add_command(explore)
    cli.add_command(chat)
    cli.add_command(watch_command)


_register_groups()


def main(argv: list[str] | None = None) -> None:
    from ragmini.api import configure

    args = sys.argv[1:] if argv is None else argv
    # Before any Hugging Face import: offline unless the user opted in.
    configure(allow_download="--allow-download" in args)
    try:
        cli.main(args=args, prog_name="ragmini", standalone_mode=False)
    except RagminiError as exc:
        click.echo(f"error: {_flagged(exc)}", err=True)
        sys.exit(1)
    except sqlite3.DatabaseError as exc:
        # The store layer turns known problems into StoreError; this is the net
        # under it (a disk error, say), still one line and a way out.
        click.echo(f"error: the store's database failed ({exc}); run `ragmini status`, or move "
                   "the store aside and ingest again", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
