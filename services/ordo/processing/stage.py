"""The embedding worker's optional stage: object crops and OCR text lines as samples of their own.

For each whole image the pipeline has embedded, when the task asks for it (``EmbedTask.processing``, or
the deployment's default for what it leaves unset): fetch the original again at up to
``max_side`` pixels (huge images are downscaled first), detect objects and read text, then embed every
crop with the image tower and every line with the text tower, in batches across the task's images. Each
sample's id is ``sample_id_for(asset, kind, index)``, so a retried task overwrites its own points.

Boxes and polygons are stored in pixels of the (EXIF-oriented) original, like ``Asset.width``/``height``.
An image with no objects or text simply yields no extra samples. One image that the models cannot handle
is logged and skipped: its whole-image sample is already stored, and the task goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from ordo.core.payload import build_payload
from ordo.domain import Asset, BoundingBox, ProcessingOptions, Sample, SampleKind, SampleRef, VectorPoint
from ordo.embedding.base import Embedder
from ordo.errors import InvalidInput, ModelUnavailable, NotFound, TooLarge
from ordo.ids import sample_id_for
from ordo.imaging import ImageLimits, decode
from ordo.ports.object_store import ObjectStore
from ordo.ports.vector_index import VectorIndex
from ordo.processing.ocr import RapidTextReader
from ordo.processing.regions import DetectedObject, ObjectDetector, TextLine, TextReader
from ordo.processing.ssd_detector import SsdMobileNetDetector
from ordo.processing.torchvision_detector import TorchvisionDetector

if TYPE_CHECKING:
    from ordo.config import Settings

log = logging.getLogger(__name__)


class StageClock(Protocol):
    """Where the stage reports its time: the pipeline's ``ordo.core.embedding_pipeline.StageClock``. A protocol,
    so this package does not import the pipeline that calls it (that import was a cycle)."""

    def stage(self, name: str, items: int = 1) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class ProcessorConfig:
    """Deployment defaults and limits (from ``Settings``)."""

    detect_objects: bool = False
    read_text: bool = False
    max_objects: int = 10
    min_object_side: int = 32
    max_text_regions: int = 200
    max_side: int = 2000


@dataclass
class _Found:
    asset: Asset
    crops: list[tuple[Sample, Image.Image]] = field(default_factory=list)
    lines: list[Sample] = field(default_factory=list)


class ImageProcessor:
    """Derives ``object`` and ``text`` samples. Models load on first use, or up front with :meth:`load`
    (start-up, when the deployment enables them, so a broken model file stops the worker at once)."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        index: VectorIndex,
        embedder: Embedder,
        limits: ImageLimits,
        detector: ObjectDetector,
        reader: TextReader,
        config: ProcessorConfig,
    ) -> None:
        self.store = store
        self.index = index
        self.embedder = embedder
        self.limits = limits
        self.detector = detector
        self.reader = reader
        self.config = config

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: ObjectStore,
        index: VectorIndex,
        embedder: Embedder,
        limits: ImageLimits,
        models: tuple[ObjectDetector, TextReader] | None = None,
    ) -> ImageProcessor:
        """The processor a deployment's settings describe; ``models`` (from :func:`processing_models`) lets
        several processors (one per embedding model) share one detector and one reader."""
        detector, reader = models or processing_models(settings)
        config = ProcessorConfig(
            detect_objects=settings.detect_objects,
            read_text=settings.read_text,
            max_objects=settings.max_objects,
            min_object_side=settings.min_object_side,
            max_text_regions=settings.max_text_regions,
            max_side=settings.processing_max_side,
        )
        return cls(
            store=store, index=index, embedder=embedder, limits=limits, detector=detector, reader=reader, config=config
        )

    def resolve(self, options: ProcessingOptions) -> tuple[bool, bool]:
        """(detect objects, read text) for a task: its explicit choices, else the deployment's defaults."""
        detect = self.config.detect_objects if options.detect_objects is None else options.detect_objects
        read = self.config.read_text if options.read_text is None else options.read_text
        return detect, read

    def load(self, *, objects: bool | None = None, text: bool | None = None) -> None:
        """Load the models the deployment enables (or those named); ``ModelUnavailable`` if one is broken."""
        if self.config.detect_objects if objects is None else objects:
            self.detector.load()
        if self.config.read_text if text is None else text:
            self.reader.load()

    def process(self, options: ProcessingOptions, items: Sequence[tuple[SampleRef, Asset]], clock: StageClock) -> int:
        """Extra samples for the whole images in ``items``; returns how many were stored."""
        detect, read = self.resolve(options)
        if not (detect or read):
            return 0
        try:
            self.load(objects=detect, text=read)
        except ModelUnavailable as exc:
            log.error("image processor disabled for this batch: %s", exc.message)
            return 0
        found: list[_Found] = []
        for ref, asset in items:
            if ref.kind is not SampleKind.IMAGE:
                continue
            try:
                found.append(self._analyse(ref, asset, detect, read, clock))
            except (InvalidInput, TooLarge, NotFound) as exc:
                log.warning("image processor skipped %s: %s", ref.source_uri or asset.asset_id, exc.message)
            except Exception:  # a model choking on one odd image must not cost the batch its other samples
                log.exception("image processor failed on %s; skipped", ref.source_uri or asset.asset_id)
        return self._embed_and_store(found, clock)

    # --- one image --------------------------------------------------------------------------------

    def _analyse(self, ref: SampleRef, asset: Asset, detect: bool, read: bool, clock: StageClock) -> _Found:
        with clock.stage("process_decode"):
            image, _ = decode(self.store.get(ref.original_key), self.limits, max_side=self.config.max_side)
            image = _fit(image, self.config.max_side)
            pixels = np.asarray(image)
        # Map model coordinates back to the original's pixels (the image may have been downscaled).
        scale_x = asset.width / image.width if asset.width else 1.0
        scale_y = asset.height / image.height if asset.height else 1.0
        out = _Found(asset)
        if detect:
            with clock.stage("detect"):
                objects = self.detector.detect(pixels)
            for obj in self._keep_objects(objects, scale_x, scale_y):
                b = obj.bbox
                crop = image.crop((round(b.x), round(b.y), round(b.x + b.width), round(b.y + b.height)))
                index = len(out.crops)
                sample = Sample(
                    sample_id_for(asset.asset_id, SampleKind.OBJECT, index),
                    asset.asset_id,
                    SampleKind.OBJECT,
                    index=index,
                    bbox=BoundingBox(b.x * scale_x, b.y * scale_y, b.width * scale_x, b.height * scale_y),
                    label=obj.label,
                    score=obj.score,
                )
                out.crops.append((sample, crop))
        if read:
            with clock.stage("ocr"):
                lines = self.reader.read(pixels)
            for line in _keep_lines(lines, self.config.max_text_regions):
                index = len(out.lines)
                out.lines.append(
                    Sample(
                        sample_id_for(asset.asset_id, SampleKind.TEXT, index),
                        asset.asset_id,
                        SampleKind.TEXT,
                        index=index,
                        polygon=[(x * scale_x, y * scale_y) for x, y in line.polygon],
                        text=line.text,
                        score=line.score,
                    )
                )
        return out

    def _keep_objects(self, objects: list[DetectedObject], scale_x: float, scale_y: float) -> list[DetectedObject]:
        """Best first, at most ``max_objects``, none whose shorter side (in original pixels) is tiny:
        a few-pixel crop embeds as noise and would surface as a false match."""
        kept = []
        for obj in sorted(objects, key=lambda o: o.score, reverse=True):
            if min(obj.bbox.width * scale_x, obj.bbox.height * scale_y) < self.config.min_object_side:
                continue
            kept.append(obj)
            if len(kept) >= self.config.max_objects:
                break
        return kept

    # --- the task's crops and lines, embedded in batches ------------------------------------------

    def _embed_and_store(self, found: list[_Found], clock: StageClock) -> int:
        crops = [(f.asset, sample, crop) for f in found for sample, crop in f.crops]
        lines = [(f.asset, sample) for f in found for sample in f.lines]
        points: list[VectorPoint] = []
        model_id = self.embedder.model_id
        if crops:
            with clock.stage("embed_objects", len(crops)):
                vectors = self.embedder.embed_images([crop for _, _, crop in crops])
            points += [
                VectorPoint(s.sample_id, v.tolist(), build_payload(a, s, model_id))
                for (a, s, _), v in zip(crops, vectors, strict=True)
            ]
        if lines:
            with clock.stage("embed_text", len(lines)):
                vectors = self.embedder.embed_texts([s.text for _, s in lines])
            points += [
                VectorPoint(s.sample_id, v.tolist(), _text_payload(a, s, model_id))
                for (a, s), v in zip(lines, vectors, strict=True)
            ]
        if points:
            self.index.ensure_collection(self.embedder.dim)
            with clock.stage("upsert", len(points)):
                self.index.upsert(points)
        return len(points)


def processing_models(settings: Settings) -> tuple[ObjectDetector, TextReader]:
    """The configured detector and text reader, not loaded yet (loading is the slow part)."""
    detector: ObjectDetector
    if settings.detector == "torchvision":
        detector = TorchvisionDetector(settings.detection_threshold)
    else:
        detector = SsdMobileNetDetector(settings.detection_threshold)
    return detector, RapidTextReader(settings.ocr_min_score, max_side=settings.processing_max_side)


def _text_payload(asset: Asset, sample: Sample, model_id: str) -> dict:
    """Text samples also carry the recogniser's confidence (``build_payload`` stores ``score`` with labels)."""
    payload = build_payload(asset, sample, model_id)
    payload["score"] = sample.score
    return payload


def _keep_lines(lines: list[TextLine], limit: int) -> list[TextLine]:
    """Lines with at least one letter or digit (a lone "-" or "|" is noise), at most ``limit``, in reading order."""
    return [line for line in lines if any(ch.isalnum() for ch in line.text)][:limit]


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale so the longer side is at most ``max_side``: a 50-megapixel scan costs seconds per model
    for no better detection (SSD sees 300×300) and little better OCR."""
    if max(image.size) <= max_side:
        return image
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image
