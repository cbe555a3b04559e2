"""The docs stay true: every figure a page shows is the one its benchmark's JSON holds
(`python -m bench.docs --check`), and every relative link resolves to a file or a heading."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import docs
from tests.conftest import REPO

PAGES = docs.pages(REPO)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(?P<text>.*?)\s*#*\s*$")


# --- figures ----------------------------------------------------------------

def test_every_page_shows_the_figures_of_its_json():
    proc = subprocess.run([sys.executable, "-m", "bench.docs", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_pages_are_the_front_door_and_docs():
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    assert {"README.md", "bench/README.md", "docs/guide.md", "docs/architecture.md",
            "docs/performance.md"} <= names
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "x_results.json").write_text(json.dumps({
        "speed": {"p50_ms": 2.80822, "n": 1362},
        "rows": [{"name": "flat", "share": 0.0117}],
        "sets": {"manpages/dev": {"convex zscore 0.50/0.50": -0.0123}},
        "table_md": "| a | b |\n|---|---|\n| 1 | 2 |",
    }))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "m.json").write_text(json.dumps({"v": "text"}))
    return tmp_path


def test_figures_are_filled_with_their_format(site):
    page = site / "p.md"
    page.write_text(
        "p50 <!-- bench x_results.json speed.p50_ms .2f -->?<!-- /bench --> ms over "
        "<!-- bench x_results.json speed.n ,d -->?<!-- /bench --> queries; "
        "<!-- bench x_results.json rows[0].share .1% -->?<!-- /bench --> kept; "
        '<!-- bench x_results.json sets["manpages/dev"]["convex zscore 0.50/0.50"] +.3f -->?'
        "<!-- /bench -->; <!-- bench docs/m.json v -->?<!-- /bench -->\n"
        "<!-- bench x_results.json table_md -->\n<!-- /bench -->\n")
    changes = docs.run(site, files=[page])
    assert len(changes) == 6
    assert page.read_text() == (
        "p50 <!-- bench x_results.json speed.p50_ms .2f -->2.81<!-- /bench --> ms over "
        "<!-- bench x_results.json speed.n ,d -->1,362<!-- /bench --> queries; "
        "<!-- bench x_results.json rows[0].share .1% -->1.2%<!-- /bench --> kept; "
        '<!-- bench x_results.json sets["manpages/dev"]["convex zscore 0.50/0.50"] +.3f -->-0.012'
        "<!-- /bench -->; <!-- bench docs/m.json v -->text<!-- /bench -->\n"
        "<!-- bench x_results.json table_md -->\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<!-- /bench -->\n")
    assert docs.run(site, check=True, files=[page]) == []  # filling twice changes nothing


def test_check_reports_a_stale_figure_and_changes_nothing(site):
    page = site / "p.md"
    text = "n = <!-- bench x_results.json speed.n -->1000<!-- /bench -->\n"
    page.write_text(text)
    changes = docs.run(site, check=True, files=[page])
    assert [(c.line, c.shown, c.wanted) for c in changes] == [(1, "1000", "1362")]
    assert page.read_text() == text
    assert docs.main(["--root", str(site), "--check", str(page)]) == 1
    assert docs.main(["--root", str(site), str(page)]) == 0
    assert docs.main(["--root", str(site), "--check", str(page)]) == 0


def test_markers_in_code_blocks_are_examples_and_stay(site):
    page = site / "p.md"
    example = "```markdown\n<!-- bench x_results.json speed.n -->57<!-- /bench -->\n```\n"
    page.write_text(example + "<!-- bench x_results.json speed.n -->57<!-- /bench -->\n")
    docs.run(site, files=[page])
    assert page.read_text() == example + "<!-- bench x_results.json speed.n -->1362<!-- /bench -->\n"


@pytest.mark.parametrize("marker, message", [
    ("<!-- bench x_results.json speed.p99_ms -->1<!-- /bench -->", "x_results.json has no 'speed.p99_ms'"),
    ("<!-- bench nothere.json a -->1<!-- /bench -->", "nothere.json: no such file"),
    ("<!-- bench x_results.json speed.n .2q -->1<!-- /bench -->", "cannot format 1362 with '.2q'"),
    ("<!-- bench x_results.json -->1<!-- /bench -->", "write <!-- bench FILE PATH [FORMAT] -->"),
    ("<!-- bench-table no-such-table -->\n<!-- /bench-table -->", "no table renderer 'no-such-table'"),
    ("<!-- bench x_results.json speed.n -->1 <!-- bench x_results.json speed.n -->2<!-- /bench -->",
     "without its closing comment"),
])
def test_a_marker_that_cannot_be_filled_names_page_and_line(site, marker, message, capsys):
    page = site / "p.md"
    page.write_text(f"# Title\n\n{marker}\n")
    with pytest.raises(docs.DocsError) as err:
        docs.run(site, check=True, files=[page])
    assert str(err.value).startswith("p.md:3: ") and message in str(err.value)
    assert docs.main(["--root", str(site), "--check", str(page)]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line, no traceback


# --- links ------------------------------------------------------------------

def _strip_blocks(text: str) -> str:
    """The page without fenced code blocks and HTML comments (examples and slots)."""
    for start, end in reversed(docs.fenced(text)):
        text = text[:start] + "\n" * text.count("\n", start, end) + text[end:]
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def _strip_code_and_comments(text: str) -> str:
    """... and without inline code: a link written there is an example, not a link."""
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", _strip_blocks(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, links and tags reduced to their text,
    punctuation but hyphens and underscores dropped, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _strip_blocks(page.read_text(encoding="utf-8")).splitlines():
        m = HEADING.match(line)
        if m:
            base = slug(m.group("text"))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_slugs_follow_github():
    assert slug("Encoders: torch, ONNX, ONNX int8") == "encoders-torch-onnx-onnx-int8"
    assert slug("`ragmini eval answers`: the numbers") == "ragmini-eval-answers-the-numbers"
    assert slug("The store's promises on Milvus, and who keeps them") == \
        "the-stores-promises-on-milvus-and-who-keeps-them"
    assert slug("1M, 100M, 1B chunks (on paper)") == "1m-100m-1b-chunks-on-paper"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for m in LINK.finditer(_strip_code_and_comments(page.read_text(encoding="utf-8"))):
        target = m.group("target")
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    assert not broken, broken
