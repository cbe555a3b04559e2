"""Generation: prompts fitted to the model's window, sampling, citations."""

from generation.answer import Answer, Sampling, answer, generate, parse_citations
from generation.models import (
    DEFAULT_GENERATOR,
    PACKAGED,
    Generator,
    available_generators,
    default_generator,
    load_generator,
)
from generation.prompt import Prompt, Source, build_prompt

__all__ = [
    "DEFAULT_GENERATOR",
    "PACKAGED",
    "Answer",
    "Generator",
    "Prompt",
    "Sampling",
    "Source",
    "answer",
    "available_generators",
    "build_prompt",
    "default_generator",
    "generate",
    "load_generator",
    "parse_citations",
]
