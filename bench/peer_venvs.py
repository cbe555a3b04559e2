"""One venv per peer library under the cache, for bench/peers.py.

    python -m bench.peer_venvs [NAME ...]     # build (or check) them

Each peer (txtai, LangChain, Chroma, LlamaIndex) runs in its own venv at
``<cache>/peers/NAME`` (``core.models.cache_dir``: ~/.cache/ragmini), never in
ragmini's: they pull their own versions of half of PyPI. torch goes in first,
pinned, from the CPU wheel on this machine's disk, and stays pinned by a
constraints file for everything after it: no peer may pull a CUDA torch. A venv
is rebuilt when its pins change (they are recorded in its ``.ready`` file).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import cache_root

TORCH = "torch==2.13.0"
# The MiniLM runner every peer uses: sentence-transformers on torch, as in each
# library's own HuggingFace integration.
ENCODER = ("sentence-transformers==6.2.0", "transformers==5.23.0")
PINS: dict[str, tuple[str, ...]] = {
    "txtai": ("txtai==9.14.0", "faiss-cpu==1.15.1", *ENCODER),
    "langchain": ("langchain-community==0.4.2", "langchain-huggingface==1.2.3",
                  "faiss-cpu==1.15.1", *ENCODER),
    "chroma": ("chromadb==1.5.9", *ENCODER),
    "llamaindex": ("llama-index-core==0.14.25", "llama-index-embeddings-huggingface==0.8.0",
                   *ENCODER),
}


def venv_dir(name: str) -> Path:
    return cache_root() / "peers" / name


def ensure_venv(name: str, quiet: bool = True) -> Path:
    """The python of peer `name`'s venv, built first if missing or built from other pins."""
    if name not in PINS:
        raise ValueError(f"unknown peer {name}; choose from {', '.join(PINS)}")
    folder = venv_dir(name)
    python = folder / "bin" / "python"
    wanted = "\n".join((TORCH, *PINS[name])) + "\n"
    ready = folder / ".ready"
    if ready.is_file() and ready.read_text() == wanted and python.is_file():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(python), "-m", "pip", "install", *(["-q"] if quiet else [])]
    subprocess.run([*pip, TORCH], check=True)
    constraints = folder / "constraints.txt"
    constraints.write_text(f"{TORCH}\n")
    subprocess.run([*pip, "-c", str(constraints), *PINS[name]], check=True)
    check = subprocess.run([str(python), "-c", "import torch; print(torch.__version__, "
                            "torch.cuda.is_available())"], check=True, capture_output=True,
                           text=True).stdout.split()
    if check != ["2.13.0+cpu", "False"]:
        raise RuntimeError(f"the {name} venv has torch {check}, not the CPU 2.13.0 build")
    ready.write_text(wanted)
    return python


def main(argv: list[str] | None = None) -> None:
    names = (argv if argv is not None else sys.argv[1:]) or list(PINS)
    for name in names:
        print(name, ensure_venv(name, quiet=False), flush=True)


if __name__ == "__main__":
    main()
