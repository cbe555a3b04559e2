"""The packaged SmolLM2 GGUF run in-process by llama.cpp (llama-cpp-python).

The GGUF file is read as it ships: nothing is converted or cached, so nothing
can go stale. Figures against the transformers path: docs/answers-llm.md.

How ragmini's Sampling maps onto llama.cpp's samplers:

- temperature 0 is llama.cpp's greedy sampler; above 0, top_k (0 = off),
  top_p and temperature as given; llama-cpp-python's extra defaults (min_p
  0.05, top_k 40) are switched off so the same settings mean the same thing
  on both paths;
- seed: llama.cpp's own random generator, so a seed repeats an answer on
  llama.cpp but not the transformers path's answer for that seed;
- no_repeat_ngram has no llama.cpp sampler: a logits processor here bans the
  tokens that would repeat an n-gram of the answer so far, citation markers
  excepted (transformers' ban also covers the prompt, which forbids quoting
  the sources, and bans "[1]" once it appears; see `_NoRepeatNgram`). Repeat, frequency and presence penalties are llama.cpp's
  nearest relatives; they are not used.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ModelUnavailable, RagminiError
from generation.prompt import Prompt, Source, build_prompt

if TYPE_CHECKING:
    from generation.answer import Sampling

# SmolLM2 was trained on 8192-token sequences; the window costs 190 MB of KV cache
# at most (f16), and only what a prompt uses is touched.
CONTEXT = 8192
INSTALL_HINT = ("llama-cpp-python is not installed: run `make setup` (its first build "
                "compiles llama.cpp, about 12 minutes on 2 cores; pip's wheel cache makes "
                "later installs take seconds) or use the generator 'smollm2-torch'")


THREADS_ENV = "RAGMINI_THREADS"


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """llama.cpp's threads: RAGMINI_THREADS, else every core but one (at least one).

    llama.cpp's threads meet at a spinning barrier after every operation, so one
    thread that loses its core stalls them all. Measured on this 2-core machine
    with other work running (docs/answers-llm.md): 2 threads generated 0.4
    tokens/s, 1 thread 9.5. Leaving a core free keeps the sentence encoder, a
    server's other requests and the rest of the machine from causing that.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise RagminiError(f"{THREADS_ENV}={raw!r} must be a whole number of threads, "
                               "1 or more", param="threads")
        return value
    return max(1, cores() - 1)


@dataclass
class LlamaCppGenerator:
    """A GGUF chat model loaded by llama.cpp. One generation at a time: a llama.cpp
    context is not thread-safe, so concurrent asks (the server) take turns."""

    name: str
    llama: Any
    path: Path
    context_window: int
    threads: int
    tokenizer: Any  # the model's own tokenizer and chat template (_LlamaTokenizer)
    fallback_from: str | None = None
    needs_model = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _citations: frozenset[int] | None = field(default=None, repr=False)

    @property
    def citation_tokens(self) -> frozenset[int]:
        """Tokens of citation markers, never banned as repeats; found on first use
        (a scan of the vocabulary: a fraction of a second, not paid at load)."""
        if self._citations is None:
            self._citations = citation_tokens(self.llama)
        return self._citations

    def prompt(self, question: str, sources: list[Source], budget: int) -> Prompt:
        """The chat prompt, rendered by the model's template and fitted to `budget` tokens."""
        return build_prompt(question, sources, self.tokenizer, chat=True, budget=budget)

    def write(self, prompt: Prompt, sampling: Sampling,
              on_text: Callable[[str], None] | None = None) -> str:
        """Decode a continuation of `prompt`; `on_text` gets each piece as it comes."""
        pieces = []
        for piece in self.stream(prompt.input_ids, sampling):
            pieces.append(piece)
            if on_text:
                on_text(piece)
        return "".join(pieces).strip()

    def stream(self, input_ids: list[int], sampling: Sampling) -> Iterator[str]:
        """The continuation of `input_ids`, piece by piece (whole UTF-8 characters)."""
        with self._lock:
            for chunk in self.llama.create_completion(
                    prompt=list(input_ids), stream=True,
                    **_sampling_args(sampling, input_ids, self.citation_tokens
                                     if sampling.no_repeat_ngram else frozenset())):
                text = chunk["choices"][0]["text"]
                if text:
                    yield text

    def complete(self, messages: list[dict], sampling: Sampling | None = None) -> str:
        """The model's reply to chat `messages` (e.g. rewriting a follow-up question)."""
        from generation.answer import Sampling

        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)
        ids = self.tokenizer(text)["input_ids"]
        return "".join(self.stream(ids, sampling or Sampling())).strip()


def load_llamacpp(path: Path, label: str, *, context: int = CONTEXT,
                  threads: int | None = None) -> LlamaCppGenerator:
    """Load a GGUF chat model with llama.cpp, `threads` (default: default_threads())
    for both reading the prompt and generating. Raises ModelUnavailable with what
    to do."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelUnavailable(INSTALL_HINT, param="generator") from exc
    threads = threads or default_threads()
    try:
        llama = Llama(model_path=str(path), n_ctx=context, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelUnavailable(f"llama.cpp cannot load {path}: {exc}; reinstall the "
                               "model's package", param="generator") from exc
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelUnavailable(f"{path} has no chat template; ragmini runs chat models "
                               "on llama.cpp", param="generator")
    window = min(context, llama.n_ctx())
    return LlamaCppGenerator(label, llama, Path(path), window, threads,
                             _LlamaTokenizer(llama, template))


class _LlamaTokenizer:
    """llama.cpp's tokenizer and the GGUF's chat template, with the three methods of a
    Hugging Face tokenizer that generation/prompt.py uses."""

    def __init__(self, llama, template: str):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = llama
        model = llama._model  # token texts are not on the public Llama object
        eos, bos = llama.token_eos(), llama.token_bos()
        self._format = Jinja2ChatFormatter(
            template, eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "")

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True,
                            tokenize: bool = False) -> str:
        self._format.add_generation_prompt = add_generation_prompt
        return self._format(messages=messages).prompt

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        # special=True: the template's <|im_start|> markers are single tokens, as in
        # transformers; no BOS, which the template writes itself when it wants one.
        ids = self.llama.tokenize(text.encode("utf-8"), add_bos=add_special_tokens,
                                  special=True)
        return {"input_ids": list(ids)}

    def decode(self, ids: list[int]) -> str:
        return self.llama.detokenize(list(ids)).decode("utf-8", errors="ignore")


def _sampling_args(sampling: Sampling, input_ids: list[int],
                   exempt: frozenset[int] = frozenset()) -> dict:
    """ragmini's Sampling as create_completion's keyword arguments (module docstring)."""
    args: dict[str, Any] = {
        "max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
        "top_p": sampling.top_p, "top_k": sampling.top_k, "min_p": 0.0, "typical_p": 1.0,
        "repeat_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0,
        "seed": sampling.seed,
    }
    if sampling.no_repeat_ngram:
        from llama_cpp import LogitsProcessorList

        args["logits_processor"] = LogitsProcessorList(
            [_NoRepeatNgram(sampling.no_repeat_ngram, start=len(input_ids), exempt=exempt)])
    return args


class _NoRepeatNgram:
    """Ban every token that would complete an n-gram already in the answer.

    Only the generated tokens count (from `start`): transformers'
    no_repeat_ngram_size also bans the prompt's n-grams, and a RAG prompt holds
    the sources, so there it forbids copying any three words of them in a row.
    N-grams made only of `exempt` tokens (brackets, digits, commas: citation
    markers) are never banned: "[1]" is three tokens, and banning its repeat
    made SmolLM2 write "[1.1.2.1]" for a second citation of source 1.
    """

    def __init__(self, n: int, start: int, exempt: frozenset[int] = frozenset()):
        self.n, self.start, self.exempt = n, start, exempt

    def __call__(self, input_ids, scores):
        import numpy as np

        n = self.n
        ids = input_ids[self.start:].tolist()
        if len(ids) < n - 1 or n < 1:
            return scores
        if n == 1:
            banned = set(ids) - self.exempt
        else:
            tail = ids[len(ids) - (n - 1):]
            marker = all(t in self.exempt for t in tail)
            banned = {ids[i + n - 1] for i in range(len(ids) - n + 1)
                      if ids[i:i + n - 1] == tail
                      and not (marker and ids[i + n - 1] in self.exempt)}
        if banned:
            scores[list(banned)] = -np.inf
        return scores


_MARKER = re.compile(r"[\s\[\]\d,;]+")


def citation_tokens(llama) -> frozenset[int]:
    """The vocabulary's tokens made only of brackets, digits, commas and spaces: what
    citation markers like "[1]" or "[2, 3]" are written with."""
    out = set()
    for token in range(llama.n_vocab()):
        text = llama.detokenize([token]).decode("utf-8", errors="replace")
        if text and _MARKER.fullmatch(text):
            out.add(token)
    return frozenset(out)
