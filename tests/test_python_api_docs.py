"""docs/python-api.md runs: every ```python block, in order, in one namespace, from a
folder that holds the bundled corpus as corpus/ (as a checkout of the repository does)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import REPO

DOC = REPO / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[int, str]]:
    """(first line number, code) of each python block."""
    text = DOC.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_page_has_examples_of_every_part():
    code = "\n".join(c for _, c in blocks())
    for call in ("ragmini.open(", ".ingest(", ".search(", ".compare(", ".ask(", ".status(",
                 ".remove(", "ragmini.evaluate(", "ragmini.neighbors(", "ragmini.analogy(",
                 "ragmini.similarity(", ".as_langchain_retriever(", "except ragmini."):
        assert call in code, call


@pytest.mark.slow
def test_the_examples_run(served_store, tmp_path, capsys):
    (tmp_path / "corpus").symlink_to(REPO / "corpus")
    # The first example ingests corpus/docs into my-store. Starting from the session's
    # store of the same files makes that ingest find them unchanged (and build only the
    # indexes the copy lacks) instead of spending half a minute embedding them again;
    # every call still runs for real.
    shutil.copytree(served_store, tmp_path / "my-store")
    namespace: dict = {"__name__": "python_api_md"}
    for line, code in blocks():
        # Padded so a traceback names the line of docs/python-api.md.
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out
    assert "bm25.md" in printed and "The documents do not answer this." in printed
