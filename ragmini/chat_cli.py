"""`ragmini chat`: a conversation with the store in the terminal.

Each question is asked through the Python API (`ragmini.open(...).ask(...,
history=...)`) with the turns so far, so a follow-up ("and how do I list it?") is
made standalone before retrieval; the query actually searched is shown. Lines
starting with / are commands: /sources, /new, /help, /quit.
"""

from __future__ import annotations

import click

import ragmini
from ragmini.api import defaults as D
from ragmini.api.errors import RagminiError
from ragmini.clitools import store_option as _store_option

MARKS = {"supported": "  ", "weak": "~ ", "unsupported": "\u2717 "}
KEEP_TURNS = 10  # turns of history sent with each question (the rewrite reads the last)
HELP = ("Ask a question; ask follow-ups as you would a person. Commands: /sources (the last "
        "answer's sources), /new (forget the conversation), /help, /quit (or end of input).")


@click.command("chat")
@click.option("--method", default=D.METHOD, show_default=True,
              help="Retrieval method, as for `ask`.")
@click.option("-k", "k", default=D.ASK_K, show_default=True,
              help="Chunks given to the generator.")
@click.option("--generator", default=None, show_default="extractive, or $RAGMINI_GENERATOR",
              help="As for `ask`: 'extractive', 'smollm2', 'openai:MODEL' (see --base-url), "
                   "a Hugging Face id or a local model folder. A language model also "
                   "rewrites follow-ups; without one, a rule does.")
@click.option("--base-url", default=None,
              help="The OpenAI-compatible server of an openai:MODEL generator "
                   "(default: $OPENAI_BASE_URL).")
@click.option("--strict/--no-strict", default=D.STRICT, show_default=True,
              help="Drop sentences the sources do not support.")
@click.option("--abstain/--no-abstain", default=D.ABSTAIN, show_default=True,
              help="Say so when the documents do not hold an answer.")
@click.option("--where", "where", multiple=True, metavar="KEY OP VALUE",
              help="Answer from the documents matching this filter only (repeatable).")
@click.option("--allow-download", is_flag=True,
              help="Let a missing --generator be fetched from the Hugging Face hub once.")
@click.option("--no-fallback", is_flag=True,
              help="Fail if --generator is unavailable instead of using the packaged SmolLM2.")
@_store_option
def chat(method, k, generator, base_url, strict, abstain, where, allow_download, no_fallback,
         store):
    """Talk to the store: ask a question, then follow-ups that lean on it.

    \b
    Examples:
      ragmini chat --generator extractive
      printf 'How do I create a tar archive?\\nHow do I list what is in it?\\n' | ragmini chat
    """
    st = ragmini.open(store)
    st.methods()  # a missing store fails here, in one line
    stdin = click.get_text_stream("stdin")
    interactive = stdin.isatty()
    click.echo(f"ragmini chat over {store}. {HELP}")
    history: list[dict] = []
    last = None
    with st:
        while True:
            if interactive:
                click.echo("> ", nl=False)
            line = stdin.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if not interactive:
                click.echo(f"> {text}")
            if text.startswith("/"):
                command = text.split()[0].lower()
                if command in ("/quit", "/exit", "/q"):
                    break
                if command == "/new":
                    history, last = [], None
                    click.echo("(new conversation)")
                elif command == "/sources":
                    _print_sources(last)
                elif command == "/help":
                    click.echo(HELP)
                else:
                    click.echo(f"unknown command {command}; {HELP}")
                continue
            try:
                answer = st.ask(text, generator=generator, method=method, k=k, strict=strict,
                                abstain=abstain, where=list(where) or None,
                                allow_download=allow_download, fallback=not no_fallback,
                                base_url=base_url, history=history[-KEEP_TURNS:])
            except RagminiError as exc:
                click.echo(f"error: {exc}", err=True)
                continue
            last = answer
            _print_turn(answer, bool(history))
            history.append({"question": text, "answer": answer.text})
    click.echo("bye")


def _print_turn(answer, follow_up: bool) -> None:
    if follow_up and answer.searched_for and answer.searched_for != answer.question:
        click.echo(f"searched for: {answer.searched_for}")
    if answer.abstained:
        click.echo(f"{answer.text} (confidence the documents hold an answer: "
                   f"{answer.abstain_score:.2f}, below {answer.abstain_threshold:.2f}); "
                   "/sources lists the closest.")
    elif answer.sentences:
        for s in answer.sentences:
            click.echo(f"{MARKS[s.support.label]}{s.text}")
        click.echo(answer.summary + ("; \u2717 = not supported by the sources" if any(
                       s.support.label == "unsupported" for s in answer.sentences) else ""))
    else:
        click.echo(answer.text or "(the model produced no text)")
    for note in answer.notes:
        click.echo(f"note: {note}", err=True)
    click.echo("")


def _print_sources(answer) -> None:
    if answer is None:
        click.echo("no answer yet: ask a question first")
        return
    for s in answer.sources:
        mark = "  (cited)" if s.n in answer.citations else ""
        snippet = " ".join(s.text.split())
        snippet = snippet if len(snippet) <= 160 else snippet[:159].rsplit(" ", 1)[0] + " \u2026"
        click.echo(f"  [{s.n}] {s.cite} - {s.title}{mark}")
        click.echo(f"      {snippet}")
    click.echo("")
