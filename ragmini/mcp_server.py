"""ragmini as an MCP server: a store's search, documents and checked answers as tools
for agents (Claude Desktop, Claude Code, Cursor, any MCP client).

`ragmini mcp --store PATH` serves it over stdio; `ragmini serve` mounts the same
server at `/mcp` (streamable HTTP) behind the HTTP server's guards. Every tool is
one call to the public API (ragmini.api) and returns that call's record as
`to_dict()`, the body `--json` prints; a RagminiError comes back as an MCP tool
error with the library's message, and the server keeps serving.
"""

# No `from __future__ import annotations`: the SDK reads each tool's annotations
# (descriptions built here included) to make its JSON schema.
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

import ragmini
from ragmini.api import defaults as D
from ragmini.api.errors import QueryError, RagminiError

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
INSTRUCTIONS = (
    "Search and read a local document collection, and get answers whose every sentence is "
    "checked against the passages it cites. Start with `search` (ranked passages with "
    "doc_id and chunk_id), read around a hit with `get_chunk` or `get_document`, and use "
    "`ask` for a cited answer: each sentence carries a support label (supported, weak, "
    "unsupported), and when the documents do not hold an answer it abstains instead of "
    "guessing. `list_documents` and the `ragmini://status` resource describe the collection.")


def _call(fn, *args, **kwargs) -> dict:
    """One API call as a tool result: its record's `to_dict()`, or a tool error."""
    try:
        return fn(*args, **kwargs).to_dict()
    except RagminiError as exc:
        raise ToolError(str(exc)) from None


def create_server(store: ragmini.Store, allow_write: Sequence[Path] = ()) -> MCPServer:
    """The MCP server over `store`. `allow_write` lists folders under which the
    `ingest` and `remove` tools may act; without any, those tools do not exist."""
    server = MCPServer("ragmini", instructions=INSTRUCTIONS, version=ragmini.__version__,
                       log_level="WARNING")
    methods = ", ".join(D.describe(()).get("all_methods", []))

    @server.tool(annotations=READ_ONLY, structured_output=True)
    def search(
        query: Annotated[str, Field(description="What to look for, in plain words.")],
        k: Annotated[int, Field(ge=1, le=100, description="How many passages.")] = D.SEARCH_K,
        method: Annotated[str, Field(description=f"Ranking method: {methods}, or "
                                                 "hybrid:A+B.")] = D.METHOD,
        where: Annotated[list[str], Field(description=(
            "Metadata conditions, all must hold: KEY=VALUE (a glob for source), "
            "KEY!=VALUE, KEY<VALUE, KEY>=VALUE (numbers, dates), KEY~TEXT."))] = [],
    ) -> dict[str, Any]:
        """Rank the collection's passages (chunks) against a query. Each hit has rank,
        score, doc_id, source, title, pages/section/location, chunk_id and text."""
        return _call(store.search, query, method=method, k=k, where=where or None)

    @server.tool(annotations=READ_ONLY, structured_output=True)
    def get_document(
        doc_id: Annotated[str, Field(description="A document id from a hit or from "
                                                 "list_documents.")],
        pages: Annotated[list[int] | None, Field(description=(
            "For a PDF, [first, last] page (1-based) to read only those pages."))] = None,
        source: Annotated[str | None, Field(description=(
            "The document's source path, when several documents share the id."))] = None,
    ) -> dict[str, Any]:
        """The text of one document as ragmini read it (cleaned, extracted), whole or
        the given pages of a PDF."""
        return _call(store.document, doc_id, pages=pages, source=source)

    @server.tool(annotations=READ_ONLY, structured_output=True)
    def get_chunk(
        chunk_id: Annotated[int, Field(description="A chunk id from a search hit.")],
        neighbours: Annotated[int, Field(ge=0, le=20, description=(
            "How many chunks to include on each side, in reading order."))] = 1,
    ) -> dict[str, Any]:
        """A passage and the passages around it in its document: read around a hit."""
        return _call(store.chunk, chunk_id, neighbours)

    @server.tool(annotations=READ_ONLY, structured_output=True)
    def list_documents(
        where: Annotated[list[str], Field(description="Metadata conditions, as in "
                                                      "search.")] = [],
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> dict[str, Any]:
        """The collection's documents, newest first: doc_id, source, title, size,
        chunk count and type, with the total that match."""
        return _call(store.documents, where or None, limit=limit, offset=offset)

    @server.tool(annotations=READ_ONLY, structured_output=True)
    def ask(
        question: Annotated[str, Field(description="A question the documents may answer.")],
        k: Annotated[int, Field(ge=1, le=20, description="Passages the answer is written "
                                                         "from.")] = D.ASK_K,
        generator: Annotated[str | None, Field(description=(
            "Who writes: 'extractive' (the sources' own sentences), 'smollm2' (the "
            "packaged model), or a configured OpenAI-compatible model; null: the "
            "server's default."))] = D.GENERATOR,
        strict: Annotated[bool, Field(description=(
            "Drop sentences the sources do not support."))] = D.STRICT,
        where: Annotated[list[str], Field(description="Answer only from documents "
                                                      "matching these conditions.")] = [],
    ) -> dict[str, Any]:
        """A cited answer: `answer` with [n] citations, `sentences` each with its support
        label and the source sentence behind it, `sources` numbered as cited; or
        `abstained: true` with the confidence when the documents hold no answer."""
        return _call(store.ask, question, k=k, generator=generator, strict=strict,
                     where=where or None)

    @server.resource("ragmini://status", name="status", mime_type="application/json",
                     description="Documents, chunks, indexed methods and where vectors live.")
    def status() -> dict:
        try:
            return {**store.status().to_dict(), "methods_available": store.methods().to_dict()}
        except RagminiError as exc:
            return {"error": str(exc)}

    if allow_write:
        _write_tools(server, store, [Path(p).resolve() for p in allow_write])
    return server


def _inside(paths: Sequence[str], roots: Sequence[Path]) -> list[Path]:
    """`paths` resolved, each under one of `roots`, or QueryError naming the first that is not."""
    out = []
    for p in paths:
        resolved = Path(p).expanduser().resolve()
        if not any(resolved == r or r in resolved.parents for r in roots):
            raise QueryError(f"{p} is outside the folders this server may write from "
                             f"({', '.join(map(str, roots))})", param="paths")
        out.append(resolved)
    return out


def _write_tools(server: MCPServer, store: ragmini.Store, roots: list[Path]) -> None:
    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                             idempotent_hint=True, open_world_hint=False))
    def ingest(paths: Annotated[list[str], Field(description=(
            "Files or folders to add; each must lie under a folder the server was "
            "started with (--allow-write)."))]) -> dict[str, Any]:
        """Add (or update) files and folders in the collection; unchanged files are
        skipped."""
        try:
            return store.ingest(_inside(paths, roots)).to_dict()
        except RagminiError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                             idempotent_hint=True, open_world_hint=False))
    def remove(paths: Annotated[list[str], Field(description=(
            "Files or folders whose documents to remove; under an --allow-write "
            "folder."))]) -> dict[str, Any]:
        """Remove the documents of these files (or everything under these folders)."""
        try:
            return store.remove(_inside(paths, roots)).to_dict()
        except RagminiError as exc:
            raise ToolError(str(exc)) from None


def run_stdio(store_path: Path, allow_write: Sequence[Path] = ()) -> None:
    """Serve the store over stdio until the client closes the pipe."""
    store = ragmini.open(store_path)
    store.methods()  # a missing store fails before the client connects
    server = create_server(store, allow_write)
    try:
        server.run("stdio")
    finally:
        store.close()
