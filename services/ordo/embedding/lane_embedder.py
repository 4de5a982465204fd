"""The loading and threading every Ordo embedder shares: lazy, once, on the model's inference lane.

Both families (``HFDualEncoder`` for transformers dual encoders, ``OrdoLiteEmbedder`` for the bundled
offline model) load lazily and idempotently under a lock, run every torch call -- loading and its probes
included -- on one :class:`~ordo.embedding.inference_lane.InferenceLane` thread (text queries ahead of image
batches), measure their CPU runtime at load (:func:`~ordo.embedding.tuned_tower.tune_tower`: thread budget,
batch size, dtype, warm-up) and check their inputs the same way. That is this class; a family supplies only
:meth:`_load_on_lane` (what to load), :meth:`prepare_image` / :meth:`_run_prepared` (images) and
:meth:`_run_texts` (texts).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ordo.embedding.base import EmbedderDefaults, checked_images, checked_texts
from ordo.embedding.inference_lane import IMAGE_PRIORITY, TEXT_PRIORITY, InferenceLane
from ordo.embedding.tuned_tower import RuntimeOptions, TunedTower, tune_tower

logger = logging.getLogger(__name__)


class LaneEmbedder(EmbedderDefaults, ABC):
    """An :class:`ordo.embedding.base.Embedder` whose work runs on its own inference lane.

    ``dim`` is 0 until :meth:`load`: a plain attribute on purpose, not a lazily loading property, because on
    Python 3.11 ``isinstance(x, Embedder)`` reads every protocol member and would load the model.
    """

    def __init__(
        self,
        *,
        model_id: str,
        device: str,
        batch_size: int,
        input_size: int,
        runtime_options: RuntimeOptions | None = None,
    ) -> None:
        """Configure only; nothing heavy happens until :meth:`load`. ``runtime_options``: how the CPU
        runtime is tuned at load (see :mod:`ordo.embedding.tuned_tower`); default: from the environment."""
        self.model_id = model_id
        self.device = device
        self.batch_size = batch_size
        # Side of the model's square input; decoders may downscale JPEGs (DCT draft) to no less than this.
        self.input_size = input_size
        self.dim = 0
        self.runtime_options = runtime_options or RuntimeOptions.from_env()
        self.tower: TunedTower | None = None  # the image tower's tuned CPU runtime, set by load()
        self._load_lock = threading.Lock()
        self._lane = InferenceLane(f"ordo-infer-{model_id}")
        self._loaded = False  # set last in load(): True means every other field is ready

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded"
        return f"{type(self).__name__}({self.model_id!r}, device={self.device!r}, {state})"

    # ---------------------------------------------------------------- loading

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Load once; later and concurrent calls return when that is done. Raises
        :class:`ordo.errors.ModelUnavailable` (with what to do) when the model cannot be had; a failed load
        leaves the instance unloaded, so a later call tries again."""
        if self._loaded:
            return
        if not self._lane.is_current_thread():
            self._lane.submit(TEXT_PRIORITY, self.load).result()  # the probes run torch: on the lane too
            return
        with self._load_lock:
            if self._loaded:
                return
            started = time.perf_counter()
            self._load_on_lane()
            self._loaded = True
            self._log_loaded(time.perf_counter() - started)

    @abstractmethod
    def _load_on_lane(self) -> None:
        """Load weights and set ``dim`` (and anything else inference needs); runs on the lane, under the lock."""

    def _log_loaded(self, seconds: float) -> None:
        logger.info("Loaded %s (dim %d) in %.1f s", self.model_id, self.dim, seconds)

    def _tune(
        self,
        module: Any,
        forward: Callable[[Any], Any],
        *,
        conv: bool,
        default_batch: int,
        text_probe: Callable[[], object],
        text_in_torch: bool = True,
    ) -> TunedTower:
        """Measure the image tower's CPU runtime (threads, batch, dtype, runtime) and warm the text path up;
        sets and returns :attr:`tower`. ``text_in_torch=False``: the text tower runs in another runtime with
        its own threads, so torch's thread count for text queries is not measured (only warmed up)."""
        self.tower = tune_tower(
            self.model_id,
            module,
            forward,
            input_size=self.input_size,
            conv=conv,
            default_batch=default_batch,
            options=self.runtime_options,
        )
        if text_in_torch:
            self.tower.tune_text(text_probe, self.runtime_options.autotune)
        else:
            self.tower.tune_text(text_probe, enabled=False)
            text_probe()
        tower = self.tower
        if tower.config.streams > 1:
            self._lane.set_streams(lambda: tower.active_streams)
        return tower

    # ----------------------------------------------------------------- images

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB PIL images of any size (other modes are converted); float32 (n, dim), unit rows.
        Exactly ``embed_prepared([prepare_image(i) for i in images])``, so both paths give the same vectors."""
        self.load()
        return self.embed_prepared([self.prepare_image(image) for image in checked_images(images)])

    @abstractmethod
    def prepare_image(self, image: Image.Image) -> np.ndarray:
        """Everything about an image that can run off the inference thread (decoder threads; thread-safe)."""

    @property
    def image_streams(self) -> int:
        """Image passes that may run side by side now (1 without streams; the budget lowers it)."""
        tower = self.tower
        return tower.active_streams if tower is not None and tower.config.streams > 1 else 1

    def embed_prepared(self, prepared: Sequence[Any]) -> np.ndarray:
        """Embed outputs of :meth:`prepare_image`; float32 (n, dim), unit rows."""
        self.load()
        if not prepared:
            return np.zeros((0, self.dim), dtype=np.float32)
        # with streams, batches may run side by side on the lane's helper threads (ONNX Runtime only)
        shared = self.tower is not None and self.tower.config.streams > 1
        return self._lane.map_batches(
            IMAGE_PRIORITY, self._run_prepared, list(prepared), self.batch_size, shared=shared
        )

    @abstractmethod
    def _run_prepared(self, batch: list[np.ndarray]) -> np.ndarray:
        """One lane job of at most ``batch_size`` prepared images; float32 (n, dim), unit rows."""

    # ------------------------------------------------------------------ texts

    def submit_text_work(self, work: Callable[[], None]) -> bool:
        """Run ``work`` on this model's inference lane at text priority (the search service's query
        batcher drains there, so passes follow each other without a thread hand-off)."""
        self._lane.submit(TEXT_PRIORITY, work)
        return True

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed text queries; float32 (n, dim), unit rows. Texts longer than the model's context are
        truncated; an empty or whitespace-only text is an :class:`ordo.errors.InvalidInput`."""
        self.load()
        checked = checked_texts(texts)
        if not checked:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._lane.submit(TEXT_PRIORITY, self._text_pass, checked).result()

    def _text_pass(self, texts: list[str]) -> np.ndarray:
        """One pass of text queries on the lane; the tuned runtime first switches to its text settings."""
        if self.tower is not None:
            self.tower.before_text()
        return self._run_texts(texts)

    @abstractmethod
    def _run_texts(self, texts: list[str]) -> np.ndarray:
        """Embed checked texts; float32 (n, dim), unit rows."""
