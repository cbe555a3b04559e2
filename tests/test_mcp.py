"""`ragmini mcp`: the official MCP client against a live server over stdio (the
process a client configuration starts) and over HTTP (`ragmini serve`'s /mcp), every
tool called, bad arguments as tool errors that leave the server serving, writes only
under --allow-write, and the HTTP mount behind the server's token and origin guard."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys

import httpx
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # a server process that loads MiniLM for ask


def _params(store, *extra):
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "ragmini.cli", "mcp", "--store", str(store), *extra],
                                 cwd=str(REPO))


def _run(coro):
    return asyncio.run(coro)


def _body(result) -> dict:
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    # The text content is the same body, for clients that read only text.
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def test_tools_over_stdio(served_store):
    from mcp import Client

    async def session():
        async with Client(_params(served_store)) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            found = await client.call_tool("search", {"query": "how does bm25 rank documents",
                                                      "k": 3, "method": "bm25"})
            hit = _body(found)["hits"][0]
            chunk = _body(await client.call_tool("get_chunk", {"chunk_id": hit["chunk_id"],
                                                               "neighbours": 1}))
            document = _body(await client.call_tool("get_document", {"doc_id": hit["doc_id"]}))
            listing = _body(await client.call_tool("list_documents",
                                                   {"where": ["type=html"], "limit": 2}))
            answer = _body(await client.call_tool("ask", {"question": "What is BM25?",
                                                          "generator": "extractive"}))
            bad_filter = await client.call_tool("search", {"query": "x", "where": ["nokey=1"]})
            missing = await client.call_tool("get_document", {"doc_id": "no-such.md"})
            out_of_range = await client.call_tool("search", {"query": "x", "k": 0})
            after = _body(await client.call_tool("search", {"query": "bm25", "k": 1,
                                                            "method": "bm25"}))
            status = json.loads((await client.read_resource("ragmini://status")).contents[0].text)
            return (listed, hit, chunk, document, listing, answer, bad_filter, missing,
                    out_of_range, after, status)

    (listed, hit, chunk, document, listing, answer, bad_filter, missing, out_of_range, after,
     status) = _run(session())

    assert set(listed) == {"search", "get_document", "get_chunk", "list_documents", "ask"}
    for tool in listed.values():  # read-only, described, with a schema from the signature
        assert tool.annotations.read_only_hint is True
        assert tool.description and tool.input_schema["properties"]
    assert listed["search"].input_schema["required"] == ["query"]
    assert "description" in listed["search"].input_schema["properties"]["where"]

    assert hit["doc_id"] == "bm25.md" and hit["rank"] == 1 and hit["text"]
    assert chunk["chunk_id"] == hit["chunk_id"] and hit["text"] == chunk["text"]
    assert hit["chunk_id"] in [a["chunk_id"] for a in chunk["around"]]
    # The document text is rebuilt from its chunks: every chunk's text is inside it.
    assert document["source"].endswith("bm25.md") and hit["text"] in document["text"]
    assert document["text"].startswith("# BM25")
    assert listing["total"] == 7 and len(listing["documents"]) == 2
    assert all(d["type"] == "html" for d in listing["documents"])
    assert not answer["abstained"] and answer["sources"] and answer["sentences"]
    assert all(s["support"]["label"] in ("supported", "weak", "unsupported")
               for s in answer["sentences"])

    assert bad_filter.is_error and "unknown filter key 'nokey'" in bad_filter.content[0].text
    assert missing.is_error and "no document with id 'no-such.md'" in missing.content[0].text
    assert out_of_range.is_error  # the schema's bound, checked by the SDK
    assert after["hits"]  # the server kept serving after the errors
    assert status["documents"] == 41 and "bm25" in status["methods_available"]["methods"]


def test_writes_only_with_allow_write_and_only_under_its_folders(served_store, tmp_path):
    from mcp import Client

    store = tmp_path / "store"
    shutil.copytree(served_store, store)
    allowed = tmp_path / "notes"
    allowed.mkdir()
    (allowed / "tides.md").write_text("# Tides\n\nSpring tides follow the full and new moon.\n")
    outside = tmp_path / "elsewhere.md"
    outside.write_text("# Elsewhere\n\nNot to be ingested.\n")

    async def session(*extra):
        async with Client(_params(store, *extra)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            if "ingest" not in names:
                return names, None, None, None
            refused = await client.call_tool("ingest", {"paths": [str(outside)]})
            added = _body(await client.call_tool("ingest", {"paths": [str(allowed)]}))
            found = _body(await client.call_tool("search", {"query": "spring tides moon",
                                                            "method": "bm25", "k": 1}))
            return names, refused, added, found

    names, *_ = _run(session())
    assert "ingest" not in names and "remove" not in names

    names, refused, added, found = _run(session("--allow-write", str(allowed)))
    assert {"ingest", "remove"} <= names
    assert refused.is_error and "outside the folders" in refused.content[0].text
    assert added["new"] == 1
    assert found["hits"][0]["doc_id"] == "tides.md"


def test_a_missing_store_fails_before_serving(tmp_path):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "ragmini.cli", "mcp", "--store",
                           str(tmp_path / "none")], capture_output=True, text=True, timeout=60,
                          cwd=REPO, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no ragmini store at") and "Traceback" not in done.stderr
    assert done.stdout == ""  # stdout belongs to the protocol


def test_the_same_tools_over_http_behind_the_token(served_store):
    """`ragmini serve` mounts the server at /mcp (streamable HTTP) behind its guard: the
    official client with the token lists and calls the tools; without it, 401."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from ragmini.server.process import running_server

    async def session(base, headers):
        async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
            transport = streamable_http_client(f"{base}/mcp", http_client=http)
            async with Client(transport) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                found = _body(await client.call_tool("search", {"query": "bm25 ranking",
                                                                "method": "bm25", "k": 1}))
                return names, found

    with running_server(served_store, "--token", "s3cret") as base:
        names, found = _run(session(base, {"Authorization": "Bearer s3cret"}))
        assert names == {"search", "get_document", "get_chunk", "list_documents", "ask"}
        assert found["hits"][0]["doc_id"] == "bm25.md"
        refused = httpx.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                  "method": "tools/list"},
                             headers={"Accept": "application/json, text/event-stream"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        cross_site = httpx.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                     "method": "tools/list"},
                                headers={"Authorization": "Bearer s3cret",
                                         "Origin": "http://evil.example"})
        assert cross_site.status_code == 403
