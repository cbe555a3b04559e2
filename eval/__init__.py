"""Evaluation: query sets, metrics, the comparison harness and its reports."""

from eval.harness import EvalResult, MethodResult, doc_run, evaluate_methods, format_table
from eval.metrics import DEFAULT_KS, evaluate, evaluate_per_query
from eval.queries import QuerySet, load_queries

__all__ = [
    "DEFAULT_KS",
    "EvalResult",
    "MethodResult",
    "QuerySet",
    "doc_run",
    "evaluate",
    "evaluate_methods",
    "evaluate_per_query",
    "format_table",
    "load_queries",
]
