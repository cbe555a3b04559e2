"""The web page in a real browser: Debian's Chromium driven by Playwright.

Chromium comes from `apt-get install chromium` (the Makefile's test setup does it);
Playwright cannot download its own browser here. These tests never skip: without
/usr/bin/chromium they fail and say how to install it. Screenshots go to
$RAGMINI_SCREENSHOTS (docs/screens/ for docs/server.md) or the test's temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragmini.server.process import running_server

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium spends its start trying to reach Google's hosts.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site) else None)
    page.goto(site)
    yield page
    assert not outside, f"the page asked for something off this server: {outside}"
    context.close()


def _shot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RAGMINI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_search(page, tmp_path):
    page.fill("#search-q", "how does BM25 rank documents?")
    page.select_option("#search-method", "bm25")
    page.press("#search-q", "Enter")
    first = page.locator("#search-results li").first
    first.wait_for()
    assert "bm25.md" in first.inner_text()
    assert page.locator("#search-results mark").count() > 0  # query words highlighted
    assert "chunks by bm25" in page.inner_text("#search-state")
    _shot(page, "search.png", tmp_path)


def test_compare_links_the_same_chunk_across_columns(page, tmp_path):
    page.click("#tab-compare")
    page.fill("#compare-q", "why average word vectors")
    page.click("#compare-form button")
    page.locator('.column[data-method="hybrid"] .card').first.wait_for()
    names = page.locator(".column h3").all_inner_texts()
    # the store's own methods (from /api/status), then the hybrids over bm25 and sbert
    assert set(names) == {"glove", "glove-sif", "sbert", "bm25", "tfidf", "hybrid", "hybrid-rrf"}
    assert names[-2:] == ["hybrid", "hybrid-rrf"]
    shared = page.locator('.column[data-method="sbert"] .card').first.get_attribute("data-chunk")
    page.locator(f'.column[data-method="sbert"] .card[data-chunk="{shared}"]').hover()
    lit = page.locator(f'.card.lit[data-chunk="{shared}"]')
    assert lit.count() >= 2  # the same chunk lights up in the hybrid column (and others)
    _shot(page, "compare.png", tmp_path)


def test_ask_streams_and_marks_support(page, tmp_path):
    page.click("#tab-ask")
    page.fill("#ask-q", "What is product quantization?")
    page.select_option("#ask-generator", "extractive")
    page.click("#ask-form button[type=submit]")
    page.locator("#ask-answer .sentence").first.wait_for()
    assert "supported by the sources" in page.inner_text("#ask-summary")
    assert page.locator('#ask-answer [data-support="supported"]').count() >= 1
    page.locator("#ask-answer a.cite").first.click()
    assert page.locator("#ask-sources details[open]").count() == 1  # the cited chunk opens
    # Advanced sampling controls sit behind a toggle.
    assert page.locator("#ask-advanced").is_hidden()
    page.click("#ask-advanced-toggle")
    assert page.locator("#ask-temperature").is_visible()
    _shot(page, "answer.png", tmp_path)


def test_ask_abstains_in_the_page(page):
    page.click("#tab-ask")
    page.fill("#ask-q", "Who won the 2022 football World Cup?")
    page.select_option("#ask-generator", "extractive")
    page.click("#ask-form button[type=submit]")
    page.locator("#ask-answer .abstained").wait_for()
    assert "do not answer" in page.inner_text("#ask-answer")


def test_upload_and_delete(page, tmp_path):
    note = tmp_path / "beavers.md"
    note.write_text("# Beavers\n\nBeavers build dams of branches and mud to make ponds.")
    page.click("#tab-documents")
    page.locator("#documents-table tbody tr").first.wait_for()
    page.set_input_files("#upload-input", str(note))
    page.wait_for_function("document.querySelector('#documents-state').textContent"
                           ".includes('ingested')")
    row = page.locator('tr[data-doc="beavers.md"]')
    row.wait_for()
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="delete beavers.md").click()
    page.wait_for_function("document.querySelector('#documents-state').textContent"
                           ".includes('removed beavers.md')")
    page.locator('tr[data-doc="beavers.md"]').wait_for(state="detached")


def test_run_an_eval(page, tmp_path):
    page.click("#tab-evals")
    page.click("#eval-run")
    page.locator("#eval-table").wait_for(timeout=180_000)
    methods = page.locator("#eval-table tbody td:first-child").all_inner_texts()
    assert {"sbert", "bm25", "hybrid"} <= set(methods)
    page.locator("#eval-result img").wait_for()
    assert page.evaluate("document.querySelector('#eval-result img').naturalWidth") > 100
    assert page.locator("#eval-history tbody tr").count() >= 1


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
