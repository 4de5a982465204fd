"""The embedder seam. Every model family (transformers dual encoders now, the bundled offline
model later) implements this small protocol; ``ordo.embedding.factory`` maps a model name to one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ordo.errors import InvalidInput


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


def checked_images(images: Sequence[Image.Image]) -> list[Image.Image]:
    """Every embedder's input check for images: PIL images with pixels, converted to RGB here rather than
    trusting each processor's conversion (palette/alpha/16-bit modes otherwise reach some as 1, 2 or 4
    channels)."""
    out = []
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise InvalidInput(f"image #{index} is a {type(image).__name__}, not a PIL image")
        if image.width < 1 or image.height < 1:
            raise InvalidInput(f"image #{index} has no pixels ({image.width}x{image.height})")
        out.append(image if image.mode == "RGB" else image.convert("RGB"))
    return out


def checked_texts(texts: Sequence[str]) -> list[str]:
    """Every embedder's input check for texts: a list of non-blank strings."""
    if isinstance(texts, str):  # a bare string is a Sequence[str] of characters: almost surely a bug
        raise InvalidInput("embed_texts expects a list of texts, not a single string")
    out = list(texts)
    for index, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInput(f"text #{index} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise InvalidInput(f"text #{index} is empty or whitespace only; a query needs at least one word")
    return out
