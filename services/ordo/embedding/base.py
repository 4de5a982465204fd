"""The embedder seam. Every model family (transformers dual encoders, the bundled offline model) implements
this small protocol; ``ordo.embedding.registry`` maps a model name to one.

The protocol declares every capability callers use (the decoder-thread preprocessing, the inference lane, the
batch and input sizes), so callers read them as plain attributes instead of probing with ``getattr``. A family
that has no use for one inherits the neutral default from :class:`EmbedderDefaults`; Ordo's own families get
them from :class:`ordo.embedding.lane_embedder.LaneEmbedder`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ordo.errors import InvalidInput


@runtime_checkable
class Embedder(Protocol):
    """Maps images and texts into one space. Outputs are float32 arrays of shape (n, dim), each row
    L2-normalised, so a dot product is the cosine similarity."""

    model_id: str
    dim: int  # 0 until loaded
    device: str
    batch_size: int  # images per forward pass; the worker embeds in chunks of this many
    input_size: int  # side of the model's square input; JPEGs may be draft-decoded down to it, not below

    @property
    def is_loaded(self) -> bool:
        """True once :meth:`load` has finished (reading it never loads)."""
        ...

    def load(self) -> None:
        """Load weights; idempotent. Raises ``ordo.errors.ModelUnavailable`` with what to do."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB PIL images of any size; batching to the configured batch size happens inside."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def prepare_image(self, image: Image.Image) -> Any:
        """The part of embedding an image that can run on the caller's (decoder) thread; thread-safe."""
        ...

    def embed_prepared(self, prepared: Sequence[Any]) -> np.ndarray:
        """Embed outputs of :meth:`prepare_image`: the same vectors :meth:`embed_images` gives."""
        ...

    def submit_text_work(self, work: Callable[[], None]) -> bool:
        """Run ``work`` where this model's text passes run (its inference lane) and return True, or return
        False without running it when the model has no such place (the caller then runs it itself)."""
        ...


class EmbedderDefaults:
    """Neutral defaults for the optional capabilities of :class:`Embedder`, for families that lack them: no
    split preprocessing (the image itself is "prepared"), no inference lane, CLIP's batch and input sizes,
    and loaded from the start. Subclasses still provide ``model_id``, ``dim``, ``device``, ``load``,
    ``embed_images`` and ``embed_texts``."""

    batch_size: int = 16
    input_size: int = 224
    #: Image passes that may run side by side (inference_lane's streams); the worker splits a task's images
    #: into a multiple of this many chunks so no stream idles at a task's end. Optional: 1 when absent.
    image_streams: int = 1

    @property
    def is_loaded(self) -> bool:
        return True

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        raise NotImplementedError

    def prepare_image(self, image: Image.Image) -> Any:
        return image

    def embed_prepared(self, prepared: Sequence[Any]) -> np.ndarray:
        return self.embed_images(list(prepared))

    def submit_text_work(self, work: Callable[[], None]) -> bool:
        del work
        return False


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
