"""`ragmini eval`: retrieval runs (the default), answer runs and the history."""

from __future__ import annotations

from pathlib import Path

import click
from click_default_group import DefaultGroup

import ragmini
from ragmini.api import defaults as D
from ragmini.api.checks import parse_ints as _ints
from ragmini.api.errors import RagminiError
from ragmini.clitools import emit as _emit
from ragmini.clitools import json_option as _json_option
from ragmini.clitools import store_option as _store_option


@click.group("eval", cls=DefaultGroup, default="run", default_if_no_args=True)
def eval_group() -> None:
    """Compare retrieval methods on labelled queries (`eval run`, the default), compare
    answers (`eval answers`), score follow-up retrieval (`eval conversations`), and list
    past runs (`eval history`)."""


@eval_group.command("run")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv); its corpus "
                   "gets a cached store of its own.")
@click.option("--split", default="test", show_default=True, help="qrels split, with --dataset.")
@click.option("--queries", "queries_path", type=click.Path(path_type=Path), default=None,
              help="Labelled queries (jsonl) for the store. Default: corpus/queries.jsonl.")
@click.option("-k", "ks", default=None,
              help="Cut-offs for recall@k and precision@k. Default 1,3,5,10 (and 20,100 with "
                   "--dataset, where the corpus is large enough).")
@click.option("--methods", default=None,
              help="Comma-separated methods. Default: every method indexed in the store, plus "
                   "its fusions; with --dataset, glove,glove-sif,sbert,bm25,tfidf,hybrid,hybrid-rrf.")
@click.option("--chunk-size", default="200", show_default=True,
              help="With --dataset: one or several sizes to sweep, e.g. 150,200,250.")
@click.option("--overlap", default="30", show_default=True, help="With --dataset: one or several.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Write report.md, metrics.json, TREC run files and recall_at_k.png here.")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap and the "
              "randomization test.")
@click.option("--resamples", default=10_000, show_default=True)
@click.option("--where", "where", multiple=True, metavar="KEY OP VALUE",
              help="Evaluate on a slice: only chunks of documents matching the filter are "
                   "ranked, judgements outside it are dropped. Repeatable (AND); as in search.")
@click.option("--tune", "tune", default=None, metavar="FUSION",
              help="Instead of comparing methods, fit FUSION's weights (hybrid, hybrid-wrrf) on "
                   "this split (use --split dev) and record them in the store; later searches "
                   "with FUSION use them.")
@click.option("--no-progress", is_flag=True)
@_store_option
@_json_option
def eval_cmd(dataset, split, queries_path, ks, methods, chunk_size, overlap, report_dir, seed,
             resamples, where, tune, no_progress, store, as_json):
    """Recall@k, precision@k, MRR@10, nDCG@10 and MAP per method, document level, with
    paired significance tests between every two methods.

    A document ranks at its best chunk. Without --dataset, the store's corpus is
    scored with --queries (the default set is written for corpus/docs).

    \b
    Examples:
      ragmini eval
      ragmini eval --dataset ~/beir/scifact --report out/scifact
      ragmini eval --dataset manpages --split dev --chunk-size 150,200,250 --methods bm25,sbert
      ragmini eval --dataset data/manpages --split dev --tune hybrid
      ragmini eval --where 'type=md'
    """
    progress = not no_progress and not as_json
    sizes, overlaps = _ints(chunk_size, "chunk_size"), _ints(overlap, "overlap")
    if tune:
        _tune(tune, dataset, split, queries_path, sizes, overlaps, store, progress, as_json)
        return
    if not dataset and (sizes != [D.CHUNK_SIZE] or overlaps != [D.OVERLAP]):
        raise RagminiError("--chunk-size and --overlap sweeps need --dataset (a store keeps "
                           "the chunking it was ingested with)")
    found = ragmini.evaluate(dataset or store, split=split, queries=queries_path,
                             methods=_methods(methods), ks=_ints(ks, "k") if ks else None,
                             chunk_size=sizes, overlap=overlaps, seed=seed,
                             resamples=resamples, where=list(where) or None,
                             report=report_dir, progress=progress)
    for note in found.notes:
        click.echo(note, err=True)
    if as_json:
        _emit(found.to_dict())
        return
    click.echo(found.table())
    click.echo("")
    if report_dir:
        click.echo(f"report written to {report_dir}")


def _methods(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def _tune(fusion, dataset, split, queries_path, sizes, overlaps, store, progress,
          as_json) -> None:
    if len(sizes) > 1 or len(overlaps) > 1:
        raise RagminiError("--tune takes one --chunk-size and one --overlap", param="tune")
    result = ragmini.tune(fusion, dataset or store, split=split, queries=queries_path,
                          chunk_size=sizes[0], overlap=overlaps[0], progress=progress)
    if as_json:
        _emit(result.to_dict())
        return
    if dataset and split == "test":
        click.echo("note: tuned on the test split; report results on a split you did not tune "
                   "on", err=True)
    click.echo(result.table())


@eval_group.command("answers")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A BEIR folder with answers.jsonl (e.g. from `ragmini datasets build faq`); "
                   "its corpus gets a cached store of its own.")
@click.option("--answers", "answers_path", type=click.Path(path_type=Path), default=None,
              help="Without --dataset: questions with reference answers over the store "
                   "(jsonl of id, text, relevant, answer). Default: corpus/answers.jsonl.")
@click.option("--generators", default=",".join(D.ANSWER_EVAL_GENERATORS), show_default=True,
              help="Comma-separated generators to compare.")
@click.option("--split", default="test", show_default=True,
              help="dev, test or all (dev is for calibration, test for reporting).")
@click.option("--limit", type=int, default=None, help="Only the first N questions (file order).")
@click.option("-k", "k", default=D.ASK_K, show_default=True, help="Chunks given to the generator.")
@click.option("--strict/--no-strict", default=D.STRICT, show_default=True,
              help="As `ask --strict`: drop unsupported sentences.")
@click.option("--abstain/--no-abstain", default=D.ABSTAIN, show_default=True,
              help="As `ask`: abstain when the documents do not answer.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Write report.md (with the least supported sentences) and metrics.json here.")
@click.option("--seed", default=0, show_default=True)
@click.option("--resamples", default=10_000, show_default=True)
@click.option("--no-progress", is_flag=True)
@_store_option
@_json_option
def eval_answers(dataset, answers_path, generators, split, limit, k, strict, abstain, report_dir,
                 seed, resamples, no_progress, store, as_json):
    """Answer quality per generator: abstention, citations, support, closeness to the
    reference answers, with paired significance tests between generators.

    \b
    Examples:
      ragmini eval answers
      ragmini datasets build faq --out data/faq
      ragmini eval answers --dataset data/faq --generators extractive,smollm2 --strict
    """
    result = ragmini.evaluate_answers(dataset or store, answers=answers_path,
                                      generators=_methods(generators) or [], split=split,
                                      limit=limit, k=k, strict=strict, abstain=abstain,
                                      seed=seed, resamples=resamples, report=report_dir,
                                      progress=not no_progress and not as_json)
    if as_json:
        _emit(result.to_dict())
        return
    click.echo(result.table())
    if report_dir:
        click.echo(f"report written to {report_dir}")


@eval_group.command("conversations")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="A folder with corpus.jsonl (BEIR) and conversations.jsonl; its corpus gets "
                   "a cached store of its own.")
@click.option("--methods", default=D.METHOD, show_default=True,
              help="Comma-separated retrieval methods (the first one's figures head --json).")
@click.option("--split", default="test", show_default=True, help="dev, test or all.")
@click.option("--seed", default=0, show_default=True)
@click.option("--resamples", default=10_000, show_default=True)
@click.option("--no-progress", is_flag=True)
@_json_option
def eval_conversations(dataset, methods, split, seed, resamples, no_progress, as_json):
    """Retrieval for the last turn of each conversation three ways: the follow-up
    alone, made standalone from the history (the rule ask uses), and the
    hand-written rewrite (the ceiling); recall@5, recall@10, MRR@10 and paired tests.

    \b
    Examples:
      ragmini eval conversations --dataset data/followups
      ragmini eval conversations --dataset data/followups --split dev --methods sbert,hybrid
    """
    found = ragmini.evaluate_conversations(dataset, methods=_methods(methods) or [],
                                           split=split, seed=seed, resamples=resamples,
                                           progress=not no_progress and not as_json)
    if as_json:
        _emit(found.to_dict())
        return
    click.echo(found.table())
    click.echo("")


@eval_group.command("history")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Show the runs recorded in this BEIR dataset's store instead.")
@click.option("--chunk-size", default=D.CHUNK_SIZE, show_default=True)
@click.option("--overlap", default=D.OVERLAP, show_default=True)
@click.option("-n", "limit", default=D.HISTORY_LIMIT, show_default=True)
@_store_option
@_json_option
def eval_history(dataset, chunk_size, overlap, limit, store, as_json):
    """Past evaluation runs recorded in the store, newest first."""
    runs = ragmini.history(dataset or store, limit, chunk_size=chunk_size, overlap=overlap)
    if as_json:
        _emit(runs.to_dict())
        return
    if not runs:
        click.echo("no evaluation recorded in this store yet; run `ragmini eval`")
        return
    for r in runs:
        head = ", ".join(f"{m} R@10 {v.get('recall@10', float('nan')):.3f} "
                         f"MRR {v.get('mrr@10', float('nan')):.3f}" for m, v in r["metrics"].items())
        click.echo(f"#{r['id']} {r['ran_at']} {r['dataset']} {r['split']} gen {r['store_generation']} "
                   f"chunks {r['chunking'].get('size')}/{r['chunking'].get('overlap')} "
                   f"({r['n_queries']} q): {head}")
