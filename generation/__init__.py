"""Generation: prompts fitted to the model's window, sampling, citations."""

from generation.answer import Answer, Sampling, answer, generate, parse_citations
from generation.models import DEFAULT_GENERATOR, PACKAGED, Generator, load_generator
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
    "build_prompt",
    "generate",
    "load_generator",
    "parse_citations",
]
