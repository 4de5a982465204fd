"""The embedder seam. Every model family (transformers dual encoders now, the bundled offline
model later) implements this small protocol; ``ordo.embedding.factory`` maps a model name to one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image


@runtime_checkable
class Embedder(Protocol):
    """Maps images and texts into one space. Outputs are float32 arrays of shape (n, dim), each row
    L2-normalised, so a dot product is the cosine similarity."""

    model_id: str
    dim: int
    device: str

    def load(self) -> None:
        """Load weights; idempotent. Raises ``ordo.errors.ModelUnavailable`` with what to do."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB PIL images of any size; batching to the configured batch size happens inside."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...
