"""The packaged SmolLM2 GGUF run in-process by llama.cpp (llama-cpp-python).

The GGUF file is read as it ships: nothing is converted or cached, so nothing
can go stale. Measured on a 2-core machine (docs/answers-llm.md): load a
quarter of a second, generation about five times the transformers path's
tokens per second.

How ragmini's Sampling maps onto llama.cpp's samplers:

- temperature 0 is llama.cpp's greedy sampler; above 0, top_k (0 = off),
  top_p and temperature as given; llama-cpp-python's extra defaults (min_p
  0.05, top_k 40) are switched off so the same settings mean the same thing
  on both paths;
- seed: llama.cpp's own random generator, so a seed repeats an answer on
  llama.cpp but not the transformers path's answer for that seed;
- no_repeat_ngram has no llama.cpp sampler: a logits processor here bans the
  tokens that would repeat an n-gram of the answer so far (transformers' ban
  also covers the prompt, which forbids quoting the sources; see
  `_NoRepeatNgram`). Repeat, frequency and presence penalties are llama.cpp's
  nearest relatives; they are not used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ModelUnavailable
from generation.prompt import Prompt, Source, build_prompt

if TYPE_CHECKING:
    from generation.answer import Sampling

# SmolLM2 was trained on 8192-token sequences; the window costs 190 MB of KV cache
# at most (f16), and only what a prompt uses is touched.
CONTEXT = 8192
INSTALL_HINT = ("llama-cpp-python is not installed: run `make setup` (its first build "
                "compiles llama.cpp, about 12 minutes on 2 cores; pip's wheel cache makes "
                "later installs take seconds) or use the generator 'smollm2-torch'")


def cores() -> int:
    """The CPU cores this process may run on (llama_cpp.server's default is half)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
                    prompt=list(input_ids), stream=True, **_sampling_args(sampling, input_ids)):
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
    """Load a GGUF chat model with llama.cpp, `threads` (default: every core) for both
    reading the prompt and generating. Raises ModelUnavailable with what to do."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelUnavailable(INSTALL_HINT, param="generator") from exc
    threads = threads or cores()
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


def _sampling_args(sampling: Sampling, input_ids: list[int]) -> dict:
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
            [_NoRepeatNgram(sampling.no_repeat_ngram, start=len(input_ids))])
    return args


class _NoRepeatNgram:
    """Ban every token that would complete an n-gram already in the answer.

    Only the generated tokens count (from `start`): transformers'
    no_repeat_ngram_size also bans the prompt's n-grams, and a RAG prompt holds
    the sources, so there it forbids copying any three words of them in a row.
    Measured on the bundled dev questions (docs/answers-llm.md), banning only
    the answer's own repeats stops the loops without that cost.
    """

    def __init__(self, n: int, start: int):
        self.n, self.start = n, start

    def __call__(self, input_ids, scores):
        import numpy as np

        n = self.n
        ids = input_ids[self.start:].tolist()
        if len(ids) < n - 1 or n < 1:
            return scores
        if n == 1:
            banned = set(ids)
        else:
            tail = ids[len(ids) - (n - 1):]
            banned = {ids[i + n - 1] for i in range(len(ids) - n + 1)
                      if ids[i:i + n - 1] == tail}
        if banned:
            scores[list(banned)] = -np.inf
        return scores
