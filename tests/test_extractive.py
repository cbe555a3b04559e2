"""The extractive answer on made-up sources and a keyword embedder: what counts as a
sentence, the relevance floors, sentences kept with the one they lean on."""

from __future__ import annotations

import numpy as np
import pytest

from generation.extractive import (
    candidate_sentences,
    extract,
    is_prose,
    leans_on_previous,
)
from generation.prompt import Source
from tests.conftest import keyword_vectors, make_hit

KEYWORDS = ("tar", "archive", "create", "grep")


def embed(texts: list[str]) -> np.ndarray:
    return keyword_vectors(texts, KEYWORDS)


def sources(*docs: tuple[str, str], start: int = 0) -> list[Source]:
    return [Source(i, make_hit(i, 0.5, i, doc, doc, doc, text).chunk)
            for i, (doc, text) in enumerate(docs, 1)]


TAR = ("tar.1", "tar saves many files together into a single archive. It can also restore "
                "them from the archive. Use the -c option to create one.\n\n"
                "-v, --verbose list files processed.")
GREP = ("grep.1", "grep searches input files for lines matching a pattern. The -r option "
                  "makes grep read directories.")
QUESTION = "How do I create a tar archive?"  # (tar, archive, create) / sqrt(3)


@pytest.mark.parametrize("sentence,prose", [
    ("tar saves many files together into a single archive.", True),
    ("`nocorrect' must come first, since the line editor needs it.", True),
    ("Use `tar -cvf out.tar dir' to make one from a folder.", True),  # a code span is a word
    ("PROMPT=$'Hi Joe,\\nwhat now?%# '", False),  # a command line
    ("alias mkdir='nocorrect mkdir'", False),
    ("-v, --verbose list files processed.", False),  # an option-list item
    ("--force overwrite existing files.", False),
    (") because of all the options it is not safe.", False),
    ("If you have zsh in your home directory, put this in .profile:", False),  # introduces
    ("Usenet FAQs are available via FTP from mirrors; see", False),  # cut at a chunk's end
    ("See git-pull(1).", False),  # too few words
])
def test_what_counts_as_a_sentence(sentence, prose):
    assert is_prose(sentence) is prose


@pytest.mark.parametrize("sentence,leans", [
    ("It can also restore them from the archive.", True),
    ("This preserves the history of the change.", True),
    ("However, the option is ignored on pipes.", True),
    ("In this case zsh assumes a command.", True),
    ("Use the -c option to create one.", False),
    ("Items of this kind are rare.", False),
])
def test_sentences_that_lean_on_the_one_before(sentence, leans):
    assert leans_on_previous(sentence) is leans


def test_candidates_leave_out_headings_code_and_cut_fragments():
    text = ("# Creating archives\n\nThe answer is to alias the command to itself, e.g.\n\n"
            "alias mkdir='nocorrect mkdir'\n\nwhich turns it off for that command only.\n\n"
            "- A list item that says something useful.\n\nDESCRIPTION\n"
            "       tar saves many files together into one archive.")
    cands = candidate_sentences(sources(("a.md", text)))
    assert [c.text for c in cands] == [
        "The answer is to alias the command to itself.",  # ", e.g." cut, full stop kept
        # "which turns it off ...": lower case right after code is the rest of a sentence
        "A list item that says something useful.",  # list mark dropped
        "tar saves many files together into one archive.",  # after a man-page heading
    ]
    # A chunk that starts inside its document: a lower-case first sentence was cut.
    cut = Source(1, make_hit(1, 0.5, 1, "b.md", "b.md", "b", "rest of it goes on here. "
                             "The next sentence is whole.").chunk.__class__(
        1, "b.md", "b.md", "b", 1, "rest of it goes on here. The next sentence is whole.",
        120, 200, 10))
    assert [c.text for c in candidate_sentences([cut])] == ["The next sentence is whole."]


def test_a_relevance_floor_relative_to_the_best_sentence():
    srcs = sources(TAR, GREP)
    # cos: "tar ... archive." 0.816 (best); "It ... archive." 0.577; "Use ... create one." 0.577.
    strict = extract(QUESTION, srcs, embed, floor=0.8, centrality=0.0, follow_floor=1.0)
    assert strict.picked == [(1, "tar saves many files together into a single archive.")]
    assert strict.text == "tar saves many files together into a single archive. [1]"
    assert strict.document == "tar.1"
    # The sentence that reads on from it ("It can also ...") comes along above 0.4 x best.
    follows = extract(QUESTION, srcs, embed, floor=0.8, centrality=0.0)
    assert [s for _, s in follows.picked] == [
        "tar saves many files together into a single archive.",
        "It can also restore them from the archive."]
    loose = extract(QUESTION, srcs, embed, floor=0.7, centrality=0.0)
    assert [s for _, s in loose.picked] == [
        "tar saves many files together into a single archive.",
        "It can also restore them from the archive.",
        "Use the -c option to create one.",
    ]  # source order; the option line and the grep sentences never
    assert all(n == 1 for n, _ in loose.picked)
    capped = extract(QUESTION, srcs, embed, 2, floor=0.7, centrality=0.0)
    assert len(capped.picked) == 2


def test_a_leaning_sentence_brings_the_one_it_leans_on():
    srcs = sources(("tar.1", "tar reads options first. It then writes the tar archive."))
    # Only the second sentence is relevant (tar, archive), but it opens with "It".
    made = extract("What writes the tar archive?", srcs, embed, floor=0.9, centrality=0.0)
    assert [s for _, s in made.picked] == ["tar reads options first.",
                                          "It then writes the tar archive."]


def test_another_documents_sentence_must_come_closer():
    other = ("other.md", "grep can search a tar archive listing.")  # cos 0.667
    srcs = sources(TAR, other)
    made = extract(QUESTION, srcs, embed, floor=0.8, other_floor=1.1, centrality=0.0)
    assert {n for n, _ in made.picked} == {1}
    made = extract(QUESTION, srcs, embed, floor=0.8, other_floor=0.75, centrality=0.0)
    assert (2, "grep can search a tar archive listing.") in made.picked


def test_nothing_to_say_is_an_empty_answer():
    made = extract(QUESTION, sources(("x.md", "# Title\n\nls -la /tmp")), embed)
    assert (made.text, made.picked) == ("", [])
