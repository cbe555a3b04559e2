"""`ragmini eval`: retrieval runs (the default), answer runs and the history."""

from __future__ import annotations

from pathlib import Path

import click
from click_default_group import DefaultGroup

from core.errors import RagminiError
from ragmini.clitools import emit as _emit
from ragmini.clitools import json_option as _json_option
from ragmini.clitools import open_store as _open_store
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
    from eval import runs as eval_runs

    if tune:
        _tune(eval_runs, tune, dataset, split, queries_path, chunk_size, overlap, store,
              not no_progress and not as_json, as_json)
        return
    cutoffs = eval_runs.parse_cutoffs(ks) if ks else None
    chosen = methods.split(",") if methods else None
    if dataset:
        results = eval_runs.evaluate_dataset(
            dataset, split, cutoffs, chosen, eval_runs.parse_ints(chunk_size, "chunk_size"),
            eval_runs.parse_ints(overlap, "overlap"), seed, resamples,
            progress=not no_progress and not as_json, where=where)
    else:
        if chunk_size != "200" or overlap != "30":
            raise RagminiError("--chunk-size and --overlap sweeps need --dataset (a store keeps "
                               "the chunking it was ingested with)")
        results = [eval_runs.evaluate_store(store, queries_path, cutoffs, chosen, seed,
                                            resamples, where=where)]
    for run in results:
        for note in run.notes:
            click.echo(note, err=True)
    if report_dir:
        eval_runs.write_reports(results, report_dir)
    if as_json:
        from ragmini.api import EvalReport, EvalSweep  # the Python API's records

        reports = tuple(EvalReport(r) for r in results)
        _emit((reports[0] if len(reports) == 1 else EvalSweep(reports)).to_dict())
        return
    from eval.harness import format_table

    for run in results:
        result = run.result
        chunking = result.chunking or {}
        label = f"{result.dataset} ({result.split})" if result.split else result.dataset
        sliced = f", where {result.where}" if result.where else ""
        click.echo(f"{label}, chunks {chunking.get('size')}/{chunking.get('overlap')}{sliced}:")
        click.echo(format_table(result))
        click.echo("")
    if report_dir:
        click.echo(f"report written to {report_dir}")


def _tune(eval_runs, fusion, dataset, split, queries_path, chunk_size, overlap, store, progress,
          as_json) -> None:
    from eval.tuning import format_tuning

    if "," in chunk_size or "," in overlap:
        raise RagminiError("--tune takes one --chunk-size and one --overlap", param="tune")
    result = eval_runs.tune(fusion, store_path=store, queries_path=queries_path,
                            dataset=dataset, split=split,
                            chunk_size=eval_runs.parse_ints(chunk_size, "chunk_size")[0],
                            overlap=eval_runs.parse_ints(overlap, "overlap")[0],
                            progress=progress)
    if as_json:
        _emit(result.to_dict())
        return
    if dataset and split == "test":
        click.echo("note: tuned on the test split; report results on a split you did not tune "
                   "on", err=True)
    click.echo(format_tuning(result))


@eval_group.command("answers")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A BEIR folder with answers.jsonl (e.g. from `ragmini datasets build faq`); "
                   "its corpus gets a cached store of its own.")
@click.option("--answers", "answers_path", type=click.Path(path_type=Path), default=None,
              help="Without --dataset: questions with reference answers over the store "
                   "(jsonl of id, text, relevant, answer). Default: corpus/answers.jsonl.")
@click.option("--generators", default="extractive,smollm2", show_default=True,
              help="Comma-separated generators to compare.")
@click.option("--split", default="test", show_default=True,
              help="dev, test or all (dev is for calibration, test for reporting).")
@click.option("--limit", type=int, default=None, help="Only the first N questions (file order).")
@click.option("-k", "k", default=3, show_default=True, help="Chunks given to the generator.")
@click.option("--strict/--no-strict", default=True, show_default=True,
              help="As `ask --strict`: drop unsupported sentences.")
@click.option("--abstain/--no-abstain", default=True, show_default=True,
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
    from eval.answers import format_answer_table, write_answer_report
    from eval.runs import evaluate_answer_run

    result = evaluate_answer_run(store_path=store, dataset=dataset, answers_path=answers_path,
                                 generators=generators.split(","), split=split, limit=limit,
                                 k=k, strict=strict, abstain=abstain, seed=seed,
                                 resamples=resamples, progress=not no_progress and not as_json)
    if report_dir:
        write_answer_report(result, report_dir)
    if as_json:
        _emit(result.to_dict())
        return
    click.echo(f"{result.dataset} ({result.split}):")
    click.echo(format_answer_table(result))
    if report_dir:
        click.echo(f"report written to {report_dir}")


@eval_group.command("conversations")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="A folder with corpus.jsonl (BEIR) and conversations.jsonl; its corpus gets "
                   "a cached store of its own.")
@click.option("--methods", default="sbert", show_default=True,
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
    from eval.conversations import (
        conversations_body,
        evaluate_conversation_run,
        format_conversation_table,
    )

    results = evaluate_conversation_run(dataset, methods.split(","), split=split, seed=seed,
                                        resamples=resamples,
                                        progress=not no_progress and not as_json)
    if as_json:
        _emit(conversations_body(results))
        return
    for r in results:
        click.echo(f"{r.dataset} ({r.split}), {r.method}:")
        click.echo(format_conversation_table(r))
        click.echo("")


@eval_group.command("history")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Show the runs recorded in this BEIR dataset's store instead.")
@click.option("--chunk-size", default=200, show_default=True)
@click.option("--overlap", default=30, show_default=True)
@click.option("-n", "limit", default=20, show_default=True)
@_store_option
@_json_option
def eval_history(dataset, chunk_size, overlap, limit, store, as_json):
    """Past evaluation runs recorded in the store, newest first."""
    from eval.history import list_runs

    if dataset:
        from eval.beir import dataset_store_dir

        store = dataset_store_dir(dataset, chunk_size, overlap)
    with _open_store(store) as st:
        runs = list_runs(st, limit)
    if as_json:
        from ragmini.api import EvalHistory

        _emit(EvalHistory(tuple(runs)).to_dict())  # the Python API's record
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
