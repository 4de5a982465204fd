"""What the processor's models find, and the ports they implement.

Coordinates are pixels of the image the model was given; the stage maps them back to the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ordo.domain import BoundingBox


@dataclass(frozen=True)
class DetectedObject:
    bbox: BoundingBox
    label: str
    score: float


@dataclass(frozen=True)
class TextLine:
    """One recognised line: its quadrilateral (clockwise from top-left), its text and the recogniser's
    confidence."""

    polygon: tuple[tuple[float, float], ...]
    text: str
    score: float


@runtime_checkable
class ObjectDetector(Protocol):
    """Finds objects in an RGB ``uint8`` array of shape (h, w, 3)."""

    name: str

    def load(self) -> None:
        """Load the model; idempotent. ``ordo.errors.ModelUnavailable`` when its files are missing or corrupt."""
        ...

    def detect(self, image: np.ndarray) -> list[DetectedObject]:
        """Detections above the detector's threshold, best first."""
        ...


@runtime_checkable
class TextReader(Protocol):
    """Reads text lines (any orientation) in an RGB ``uint8`` array of shape (h, w, 3)."""

    name: str

    def load(self) -> None:
        """Load the models; idempotent. ``ordo.errors.ModelUnavailable`` when a file is missing or corrupt."""
        ...

    def read(self, image: np.ndarray) -> list[TextLine]:
        """Lines recognised with at least the reader's minimum confidence, in reading order."""
        ...
