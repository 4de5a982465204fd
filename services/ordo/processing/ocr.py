"""Text reader: PaddleOCR's PP-OCR models (detection, 0°/180° direction classifier, recognition) through
``rapidocr`` on onnxruntime. The ONNX files ship inside the ``rapidocr`` wheel, so it loads offline.

The direction classifier is what reads upside-down text; detection returns quadrilaterals, so slanted
and vertical lines come back with their true polygon. rapidocr would try to *download* a model file it
cannot find, which fails here with a confusing network error: the files are checked first, and every
model is loaded (and run once) at :meth:`RapidTextReader.load`, so a missing or corrupt file is a clear
start-up error rather than a failure on the first image.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from ordo.errors import ModelUnavailable, Reason
from ordo.processing.regions import TextLine

if TYPE_CHECKING:
    from rapidocr import RapidOCR
    from rapidocr.utils.output import RapidOCROutput

# The models rapidocr 3.10 picks by default (PP-OCRv6 small det/rec, PP-OCR mobile cls), by its config keys.
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
}


def rapidocr_model_dir() -> Path:
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("OCR needs the wheel rapidocr==3.10.0 (pip install it)", reason=Reason.OCR_UNAVAILABLE)
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class RapidTextReader:
    """``TextReader`` on rapidocr. ``min_score`` drops lines the recogniser is unsure of; ``max_side``
    caps the image side rapidocr works at (it also upsamples tiny images itself)."""

    name = "rapidocr-pp-ocrv6"

    def __init__(self, min_score: float = 0.5, *, model_dir: Path | None = None, max_side: int = 2000) -> None:
        self.min_score = min_score
        self.max_side = max_side
        self._model_dir = model_dir
        self._engine: RapidOCR | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._engine is not None:
                return
            folder = self._model_dir or rapidocr_model_dir()
            paths = {key: folder / name for key, name in MODEL_FILES.items()}
            for path in paths.values():
                if not path.is_file() or path.stat().st_size == 0:
                    raise ModelUnavailable(
                        f"OCR model file {path} is missing or empty; reinstall rapidocr==3.10.0",
                        reason=Reason.OCR_UNAVAILABLE,
                    )
            from rapidocr import RapidOCR

            params = {
                "Global.log_level": "error",  # "no text found" is an answer, not a warning
                "Global.text_score": self.min_score,
                "Global.max_side_len": self.max_side,
                **{f"{key}.model_path": str(path) for key, path in paths.items()},
            }
            try:
                engine = RapidOCR(params=params)
                # rapidocr loads each model on first use: load all three now, so a corrupt file fails here.
                engine._load_det_model()
                engine._load_cls_model()
                engine._load_rec_model()
            except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
                raise ModelUnavailable(
                    f"OCR models in {folder} cannot be loaded ({type(exc).__name__}: {exc}); "
                    "reinstall rapidocr==3.10.0",
                    reason=Reason.OCR_UNAVAILABLE,
                ) from exc
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            self._engine = engine

    def read(self, image: np.ndarray) -> list[TextLine]:
        self.load()
        # rapidocr takes OpenCV's BGR order for arrays.
        engine = self._engine
        assert engine is not None  # load() set it or raised
        # With detection, classification and recognition all on (the default), the answer is a RapidOCROutput.
        result = cast("RapidOCROutput", engine(np.ascontiguousarray(image[:, :, ::-1])))
        if result.boxes is None or result.txts is None or result.scores is None:
            return []
        lines = []
        for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            text = text.strip()
            if text and score >= self.min_score:
                polygon = tuple((float(x), float(y)) for x, y in np.asarray(box).tolist())
                lines.append(TextLine(polygon, text, float(score)))
        return lines
