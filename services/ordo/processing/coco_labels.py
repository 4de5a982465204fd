"""COCO category names by the 90-id scheme of the TensorFlow object-detection model zoo, which the SSD
model outputs (ids 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83 are unused). Names match the COCO
annotations (and ``coco-captions-mini``'s ``objects`` field)."""

from __future__ import annotations

_IN_ID_ORDER = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", None, "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", None, "backpack", "umbrella", None, None,
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
    "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", None, "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
    "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", None, "dining table", None, None,
    "toilet", None, "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", None, "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
]  # fmt: skip

COCO_LABELS: dict[int, str] = {i + 1: name for i, name in enumerate(_IN_ID_ORDER) if name is not None}
