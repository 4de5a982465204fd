"""Object detector on torchvision's COCO Faster R-CNN (MobileNet v3), for deployments that have its weights.

Not usable here: torchvision downloads its weights at run time and its PyPI build does not import beside
the CPU torch wheel Ordo pins (see MODELS.md), so ``load`` raises a clear ``ModelUnavailable`` instead.
Where ``torchvision`` is installed and its weights are cached, it plugs into the same port as the SSD.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ordo.domain import BoundingBox
from ordo.errors import ModelUnavailable, Reason
from ordo.processing.regions import DetectedObject


class TorchvisionDetector:
    name = "torchvision-fasterrcnn-mobilenet-v3"

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._model: Any = None  # a torchvision detection model (untyped here: torchvision is optional)
        self._labels: list[str] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                # torchvision is optional (GPU images only); absent, this is the ImportError handled below.
                from torchvision.models.detection import (  # pyright: ignore[reportMissingImports]
                    FasterRCNN_MobileNet_V3_Large_FPN_Weights,
                    fasterrcnn_mobilenet_v3_large_fpn,
                )

                weights = FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT
                model = fasterrcnn_mobilenet_v3_large_fpn(weights=weights).eval()
            except Exception as exc:  # ImportError, a failed download, a broken cache: all mean "not here"
                raise ModelUnavailable(
                    f"the torchvision detector cannot be loaded ({type(exc).__name__}: {exc}); "
                    "use ORDO_DETECTOR=ssd-mobilenet-v2",
                    reason=Reason.DETECTOR_UNAVAILABLE,
                ) from exc
            self._labels = list(weights.meta["categories"])
            self._model = model

    def detect(self, image: np.ndarray) -> list[DetectedObject]:  # pragma: no cover - needs the weights
        import torch

        self.load()
        tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
        with self._lock, torch.inference_mode():
            out = self._model([tensor])[0]
        found = []
        rows = zip(out["boxes"].tolist(), out["labels"].tolist(), out["scores"].tolist(), strict=True)
        for box, label, score in rows:
            if score >= self.threshold and 0 < label < len(self._labels) and self._labels[label] != "N/A":
                x1, y1, x2, y2 = box
                found.append(DetectedObject(BoundingBox(x1, y1, x2 - x1, y2 - y1), self._labels[label], float(score)))
        return found
