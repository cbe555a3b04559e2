"""The web page in a real browser: Debian's Chromium driven by Playwright.

Chromium comes from `apt-get install chromium` (the Makefile's test setup does it);
Playwright cannot download its own browser here. These tests never skip: without
/usr/bin/chromium they fail and say how to install it. Screenshots go to
$RAGMINI_SCREENSHOTS (docs/screens/ for docs/server.md) or the test's temporary folder.

The page runs under its own Content-Security-Policy (no eval), so the tests wait
with locators and `expect`, never `page.wait_for_function`.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from ragmini.server.process import free_port, running_server
from tests.conftest import REPO
from tests.test_documents import render_pdf

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium spends its start trying to reach Google's hosts.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STATIC = REPO / "ragmini" / "server" / "static"
# Generous, like the page's default timeout: a first request loads models on a busy machine.
expect.set_options(timeout=90_000)


@pytest.fixture(scope="module")
def site(served_store):
    with running_server(served_store) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).is_file(), (
        f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _off_site(site: str, url: str) -> bool:
    """A request that leaves this server (the PDF viewer's chrome-extension:// pages,
    blob: and data: URLs stay in the browser)."""
    return url.startswith(("http:", "https:", "ws:", "wss:")) and not url.startswith(site)


@pytest.fixture
def context(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(90_000)
    outside: list[str] = []
    context.on("request", lambda r: outside.append(r.url) if _off_site(site, r.url) else None)
    yield context
    assert not outside, f"the page asked for something off this server: {outside}"
    context.close()


@pytest.fixture
def page(context, site):
    page = context.new_page()
    page.goto(site)
    expect(page.locator("#store-line")).to_contain_text(" documents")  # the page has started
    yield page


def _shot(page, name: str, tmp_path: Path, full_page: bool = True) -> Path:
    folder = Path(os.environ.get("RAGMINI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path


def _methods(site: str) -> dict:
    return httpx.get(f"{site}/api/methods", timeout=60).json()


def test_search(page, tmp_path):
    page.fill("#search-q", "how does BM25 rank documents?")
    page.select_option("#search-method", "bm25")
    page.press("#search-q", "Enter")
    first = page.locator("#search-results li").first
    first.wait_for()
    assert "bm25.md" in first.inner_text()
    assert page.locator("#search-results mark").count() > 0  # query words highlighted
    expect(page.locator("#search-state")).to_contain_text("chunks by bm25")
    # Every hit links to its document.
    links = page.locator("#search-results a.doc")
    assert links.count() == page.locator("#search-results li").count()
    assert links.first.get_attribute("href").startswith("#read?doc=bm25.md")
    _shot(page, "search.png", tmp_path)


def test_messages_speak_the_page_s_language(page):
    """No CLI flag in a filter error; `code` in a message is shown as code."""
    page.fill("#search-q", "ranking")
    page.fill("#search-where", "type")
    page.press("#search-q", "Enter")
    state = page.locator("#search-state.error")
    expect(state).to_contain_text("cannot read filter 'type'")
    assert "--where" not in state.inner_text() and "e.g. type=md" in state.inner_text()
    page.evaluate("setState('search', 'run `ragmini status --repair` first', true)")
    assert page.locator("#search-state code").inner_text() == "ragmini status --repair"


def test_the_page_offers_what_the_store_has(page, site):
    """Methods, fusions, generators and defaults come from /api/methods."""
    body = _methods(site)
    available = [f["name"] for f in body["fusions"] if f["available"]]
    options = page.locator("#search-method option")
    expect(options).to_have_count(len(body["methods"]) + len(available))
    assert options.all_inner_texts() == body["methods"] + available
    assert page.input_value("#search-method") == body["defaults"]["method"]
    assert page.input_value("#search-k") == str(body["defaults"]["k"])
    assert page.input_value("#ask-generator") == body["defaults"]["generator"]


def test_no_method_name_is_written_into_the_page():
    """The page asks /api/methods; no name of the registry (or a generator) is a
    literal in its HTML, JS or CSS."""
    from ragmini.api.defaults import generators
    from retrieval.methods import names

    for path in STATIC.glob("*.*"):
        text = path.read_text(encoding="utf-8")
        for name in (*names(), *generators()):
            assert not re.search(rf"""['"`>]{re.escape(name)}['"`<]""", text, re.I), (path, name)
            assert not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), (path, name)


def test_compare_has_a_picker_and_fits_at_1280(page, site, tmp_path):
    defaults = _methods(site)["defaults"]["compare"]
    page.click("#tab-compare")
    checked = page.locator("#compare-methods input:checked")
    expect(checked).to_have_count(len(defaults))
    assert [c.get_attribute("value") for c in checked.all()] == defaults
    page.fill("#compare-q", "why average word vectors")
    page.click("#compare-form button")
    page.locator(f'.column[data-method="{defaults[-1]}"] .card').first.wait_for()
    assert page.locator(".column h3").all_inner_texts() == defaults

    def one_row() -> bool:
        tops = {round(h.bounding_box()["y"]) for h in page.locator(".column h3").all()}
        return len(tops) == 1 and page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth")

    assert one_row()
    first = page.locator(f'.column[data-method="{defaults[0]}"] .card').first
    shared = first.get_attribute("data-chunk")
    page.locator(f'.column[data-method="{defaults[0]}"] .card[data-chunk="{shared}"]').hover()
    assert page.locator(f'.card.lit[data-chunk="{shared}"]').count() >= 2
    _shot(page, "compare.png", tmp_path)
    # Every method at once still fits in one row.
    for box in page.locator("#compare-methods input").all():
        box.check()
    page.click("#compare-form button")
    expect(page.locator(".column h3")).to_have_count(page.locator("#compare-methods input").count())
    assert one_row()
    for box in page.locator("#compare-methods input").all():
        box.uncheck()
    page.click("#compare-form button")
    expect(page.locator("#compare-state")).to_contain_text("pick at least one method")


def test_ask_streams_and_marks_support(page, tmp_path):
    page.click("#tab-ask")
    page.fill("#ask-q", "What is product quantization?")
    page.select_option("#ask-generator", "extractive")
    page.click("#ask-form button[type=submit]")
    page.locator("#ask-answer .sentence").first.wait_for()
    expect(page.locator("#ask-summary")).to_contain_text("supported by the sources")
    expect(page.locator("#ask-state")).to_have_text("answered by extractive")
    assert page.locator('#ask-answer [data-support="supported"]').count() >= 1
    page.locator("#ask-answer a.cite").first.click()
    assert page.locator("#ask-sources details[open]").count() == 1  # the cited chunk opens
    # Each source links to its document.
    assert page.locator("#ask-sources a.doc").count() == page.locator("#ask-sources li").count()
    # Advanced sampling controls sit behind a toggle.
    assert page.locator("#ask-advanced").is_hidden()
    page.click("#ask-advanced-toggle")
    assert page.locator("#ask-temperature").is_visible()
    _shot(page, "answer.png", tmp_path)


def test_a_follow_up_leans_on_the_conversation(page, tmp_path):
    """The page keeps the conversation: a follow-up is searched standalone (shown),
    the earlier turn is listed, and "new conversation" forgets it."""
    page.click("#tab-ask")
    page.select_option("#ask-generator", "extractive")
    page.fill("#ask-q", "What is BM25?")
    page.click("#ask-form button[type=submit]")
    expect(page.locator("#ask-state")).to_have_text("answered by extractive")
    expect(page.locator("#conversation-turns li")).to_have_count(1)
    page.fill("#ask-q", "How does it normalise for document length?")
    page.click("#ask-form button[type=submit]")
    expect(page.locator("#conversation-turns li")).to_have_count(2)
    expect(page.locator("#ask-searched")).to_contain_text("searched for:")
    expect(page.locator("#ask-searched")).to_contain_text("BM25")
    expect(page.locator("#ask-sources")).to_contain_text("bm25.md")
    _shot(page, "conversation.png", tmp_path)
    page.click("#conversation-new")
    expect(page.locator("#conversation")).to_be_hidden()
    expect(page.locator("#ask-searched")).to_be_hidden()


def test_checkboxes_sit_beside_their_labels(page):
    page.click("#tab-ask")
    for box in ("#ask-strict", "#ask-abstain"):
        label = page.locator(f"label:has({box})").bounding_box()
        check = page.locator(box).bounding_box()
        assert label["height"] < 2.2 * check["height"], box  # one line, not stacked
        assert check["x"] <= label["x"] + 4


def test_a_citation_of_a_source_not_given_is_not_a_link(page):
    page.click("#tab-ask")
    page.locator("#ask-generator option").first.wait_for(state="attached")
    page.evaluate("""renderAnswer({abstained: false, answer: "A [1]. B [4].", citations: [1],
      invalid_citations: [4], notes: [], sentences: [
        {text: "A [1].", citations: [1], support: {label: "supported", score: 0.9, source_id: 1, source_sentence: "A"}},
        {text: "B [4].", citations: [4], support: {label: "weak", score: 0.2, source_id: null, source_sentence: "B"}}],
      sources: [{n: 1, doc_id: "bm25.md", source: "/x/bm25.md", chunk_id: 1, title: "BM25", text: "A",
                 pages: null, section: null, location: ""}]})""")
    assert page.locator("#ask-answer a.cite").all_inner_texts() == ["[1]"]
    invalid = page.locator("#ask-answer .cite.invalid")
    assert invalid.inner_text() == "[4]" and "given 1 source" in invalid.get_attribute("title")


def test_ask_abstains_in_the_page(page):
    page.click("#tab-ask")
    page.fill("#ask-q", "Who won the 2022 football World Cup?")
    page.select_option("#ask-generator", "extractive")
    page.click("#ask-form button[type=submit]")
    page.locator("#ask-answer .abstained").wait_for()
    assert "do not answer" in page.inner_text("#ask-answer")
    expect(page.locator("#ask-state")).to_contain_text("declined")


def test_a_text_citation_opens_the_reader_at_the_chunk(page, tmp_path):
    page.fill("#search-q", "saturation of term frequency")
    page.select_option("#search-method", "bm25")
    page.press("#search-q", "Enter")
    hit = page.locator("#search-results li").first
    hit.wait_for()
    chunk = hit.get_attribute("data-chunk")
    text = hit.locator(".passage").inner_text()
    hit.locator("a.doc").click()
    cited = page.locator("#reader-cited")
    cited.wait_for()
    assert cited.get_attribute("data-chunk") == chunk
    assert cited.inner_text().split() == text.split()
    box, height = cited.bounding_box(), page.viewport_size["height"]
    assert box["y"] < height and box["y"] + min(box["height"], height / 2) > 0  # in view
    assert page.locator("#reader a", has_text="open the original file").count() == 1
    _shot(page, "reader.png", tmp_path, full_page=False)
    page.click("#reader-back")
    expect(page.locator("#search")).to_be_visible()
    assert page.locator("#search-results li").first.get_attribute("data-chunk") == chunk


@pytest.fixture(scope="module")
def manual_pdf(site) -> bytes:
    """A groff-rendered PDF, uploaded into the served store."""
    pdf = render_pdf(sections=6, paragraphs=8)
    got = httpx.post(f"{site}/api/documents", timeout=300,
                     files=[("files", ("manual.pdf", pdf, "application/pdf"))]).json()
    assert got["files"][0]["doc_id"] == "uploads/manual.pdf"
    return pdf


def _viewer_page(pdf_page, timeout: float = 60) -> str:
    """The page number Chromium's PDF viewer shows (its toolbar, in its own frame)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in pdf_page.frames:
            # Playwright keeps the viewer frame's first URL (about:blank); ask the frame.
            try:
                where = frame.evaluate("location.href")
            except Exception:  # noqa: BLE001 (a frame still being replaced)
                continue
            if where.startswith("chrome-extension://"):
                box = frame.locator("viewer-page-selector input")
                box.wait_for()
                expect(box).not_to_have_value("")
                return box.input_value()
        time.sleep(0.25)
    raise AssertionError(f"no PDF viewer in {[f.url for f in pdf_page.frames]}")


def test_a_pdf_citation_opens_at_its_page(page, context, manual_pdf, tmp_path):
    page.fill("#search-q", "marker4x5")
    page.select_option("#search-method", "bm25")
    page.press("#search-q", "Enter")
    link = page.locator("#search-results li").first.locator("a.doc")
    link.wait_for()
    href = link.get_attribute("href")
    cited = re.search(r"p\. (\d+)", link.inner_text()).group(1)
    assert href.startswith("/api/documents/uploads%2Fmanual.pdf/file?source=")
    assert href.endswith(f"#page={cited}") and int(cited) > 1
    with context.expect_page() as opened:
        link.click()
    pdf_page = opened.value
    pdf_page.wait_for_load_state()
    assert pdf_page.url.endswith(f"#page={cited}")
    assert _viewer_page(pdf_page) == cited
    time.sleep(1)  # let the page render before the picture
    _shot(pdf_page, "pdf.png", tmp_path, full_page=False)


def test_upload_and_delete(page, site, tmp_path):
    note = tmp_path / "beavers.md"
    note.write_text("# Beavers\n\nBeavers build dams of branches and mud to make ponds.")
    page.click("#tab-documents")
    page.locator("#documents-table tbody tr").first.wait_for()
    counts = page.locator("#store-line")
    expect(counts).to_contain_text(" documents")
    before = int(counts.inner_text().split()[0])
    page.set_input_files("#upload-input", str(note))
    expect(page.locator("#documents-state")).to_contain_text("ingested as uploads/beavers.md")
    expect(counts).to_contain_text(f"{before + 1} documents")  # the header follows
    row = page.locator('tr[data-doc="uploads/beavers.md"]')
    row.wait_for()
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="delete uploads/beavers.md").click()
    expect(page.locator("#documents-state")).to_contain_text("removed uploads/beavers.md")
    page.locator('tr[data-doc="uploads/beavers.md"]').wait_for(state="detached")
    expect(counts).to_contain_text(f"{before} documents")


def test_run_an_eval(page, tmp_path):
    page.click("#tab-evals")
    expect(page.locator("#eval-set")).to_have_value("bundled")
    assert page.locator("#eval-set option:checked").inner_text() == "bundled corpus/queries.jsonl"
    page.click("#eval-run")
    page.locator("#eval-table").wait_for(timeout=180_000)
    methods = page.locator("#eval-table tbody td:first-child").all_inner_texts()
    assert len(methods) >= 5
    expect(page.locator("#eval-state")).to_contain_text("queries of bundled corpus/queries.jsonl")
    page.locator("#eval-result img").wait_for()
    assert page.evaluate("document.querySelector('#eval-result img').naturalWidth") > 100
    first = page.locator("#eval-history tbody tr").first
    first.wait_for()
    assert "corpus/queries.jsonl" in first.inner_text()


def test_phone_width_and_keyboard(browser, site):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(site)
    page.focus("#tab-search")
    page.keyboard.press("ArrowRight")
    assert page.locator("#compare").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page scrolls sideways at phone width ({width}px)"
    context.close()


def test_docs_render_offline(page, site, tmp_path):
    """/docs is Swagger UI 5 from the installed package: every operation is listed
    and nothing is fetched from anywhere but this server (the context checks)."""
    operations = sum(len(ops) for ops in httpx.get(f"{site}/openapi.json").json()["paths"].values())
    page.goto(f"{site}/docs")
    expect(page.locator(".opblock")).to_have_count(operations)
    expect(page.locator(".opblock-summary-path", has_text="/api/methods")).to_have_count(1)
    version = page.evaluate("window.versions.swaggerUI.version")
    assert int(version.split(".")[0]) >= 5
    _shot(page, "docs.png", tmp_path, full_page=False)


def test_a_wrong_token_is_said_to_be_wrong(browser, served_store):
    with running_server(served_store, "--token", "s3cret") as base:
        context = browser.new_context()
        page = context.new_page()
        asked: list[str] = []

        def answer(dialog):
            asked.append(dialog.message)
            dialog.accept("wrong" if len(asked) == 1 else "s3cret")

        page.on("dialog", answer)
        page.goto(base)
        expect(page.locator("#store-line")).to_contain_text(" documents")
        assert "not accepted" not in asked[0] and "not accepted" in asked[1]
        context.close()


# -- another site's page tries to write ---------------------------------------------

ATTACK = """<!doctype html><meta charset="utf-8"><title>attack</title>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="up" action="TARGET/api/documents" method="post" enctype="multipart/form-data" target="sink1">
  <input type="file" name="files" id="file"></form>
<form id="ev" action="TARGET/api/eval" method="post" enctype="text/plain" target="sink2">
  <input name='{"methods": ["bm25"], "x": "' value='"}'></form>
<pre id="out"></pre>
<script>
const target = "TARGET";
const results = [];
const planted = () => new File(["# Planted\\n\\nplanted by another site"], "planted.md", {type: "text/markdown"});
const form = () => { const f = new FormData(); f.append("files", planted()); return f; };
async function attempt(name, run) {
  try { const r = await run(); results.push([name, r.type, r.status]); }
  catch (e) { results.push([name, "error", String(e)]); }
}
(async () => {
  await attempt("upload no-cors", () => fetch(`${target}/api/documents`, {method: "POST", mode: "no-cors", body: form()}));
  await attempt("upload cors", () => fetch(`${target}/api/documents`, {method: "POST", body: form()}));
  await attempt("delete cors", () => fetch(`${target}/api/documents/bm25.md`, {method: "DELETE"}));
  await attempt("delete no-cors", () => fetch(`${target}/api/documents/bm25.md`, {method: "DELETE", mode: "no-cors"}));
  await attempt("eval no-cors", () => fetch(`${target}/api/eval`, {method: "POST", mode: "no-cors", body: "{}"}));
  await attempt("eval cors", () => fetch(`${target}/api/eval`, {method: "POST", body: "{}",
    headers: {"Content-Type": "application/json"}}));
  const dt = new DataTransfer(); dt.items.add(planted());
  document.getElementById("file").files = dt.files;
  document.getElementById("up").submit();
  document.getElementById("ev").submit();
  document.getElementById("out").textContent = JSON.stringify(results);
})();
</script>"""


@pytest.fixture
def recorded_site(served_store):
    """The app served in this process, with every request that reaches it recorded
    (method, path, status; CORS preflights too), as seen in front of the guard."""
    import uvicorn

    from ragmini.server.app import Settings, create_app
    from ragmini.server.guard import http_protocol

    app = create_app(Settings(store=served_store))
    seen: list[tuple[str, str, int]] = []

    async def recorder(scope, receive, send):
        async def record(event):
            if event["type"] == "http.response.start":
                seen.append((scope["method"], scope["path"], event["status"]))
            await send(event)

        await app(scope, receive, record if scope["type"] == "http" else send)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port,
                                           log_level="warning", http=http_protocol()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the in-process server did not start"
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def other_site(tmp_path, recorded_site):
    """A second local web server, on another port, serving the attacking page."""
    folder = tmp_path / "other-site"
    folder.mkdir()
    (folder / "attack.html").write_text(ATTACK.replace("TARGET", recorded_site[0]))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _snapshot(site: str, store: Path) -> tuple:
    """The store as a user sees it: every document, and the files of uploads/."""
    docs = httpx.get(f"{site}/api/documents", params={"limit": 500}, timeout=60).json()
    uploads = store / "uploads"
    files = sorted((p.name, p.stat().st_size) for p in uploads.iterdir()) \
        if uploads.exists() else []
    return docs["total"], sorted((d["doc_id"], d["source"], d["ingested_at"])
                                 for d in docs["documents"]), files


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"], ids=["cross-site", "same-site"])
def test_a_page_of_another_site_cannot_write(browser, recorded_site, served_store, other_site,
                                             name):
    """Uploads, a delete and an eval job, by fetch (no-cors and cors) and by plain
    HTML forms, from a page on another port (another site, or the same host): the
    server answers 403 to each that reaches it, and nothing in the store changes."""
    site, seen = recorded_site
    before = _snapshot(site, served_store)
    seen.clear()
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"http://{name}:{other_site}/attack.html")
    expect(page.locator("#out")).not_to_have_text("", timeout=60_000)
    fetched = page.inner_text("#out")
    deadline = time.monotonic() + 60
    while len([s for s in seen if s[0] == "POST"]) < 5 and time.monotonic() < deadline:
        page.wait_for_timeout(200)  # the two form posts load their frames
    context.close()
    writes = [s for s in seen if s[0] != "OPTIONS"]
    assert writes and all(status == 403 for _, _, status in writes), (writes, fetched)
    # Both uploads by fetch and the form upload, the eval by fetch and by form: refused.
    paths = [(m, path) for m, path, _ in writes]
    assert paths.count(("POST", "/api/documents")) == 3, (writes, fetched)
    assert paths.count(("POST", "/api/eval")) == 2, (writes, fetched)
    # The DELETE and the JSON eval need a CORS preflight, which this server never grants.
    assert all(status == 405 for m, _, status in seen if m == "OPTIONS"), seen
    assert _snapshot(site, served_store) == before
