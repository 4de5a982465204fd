"""Zero-shot classification on a labelled folder, measured on a live stack.

Each class name is put into prompt templates ("a photo of a {}."), embedded by the serving model
(EmbedTexts) and averaged into one class vector (prompt ensembling, as in the CLIP paper); each stored
image vector (GetImageVectors) is classified by its nearest class vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ordo.errors import InvalidInput, Reason
from ordo.evaluation import metrics, service
from ordo.evaluation.datasets import LabelledImage

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a low resolution photo of a {}.",
    "a good photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a cropped photo of a {}.",
)


def check_templates(templates: Sequence[str]) -> list[str]:
    """Templates must hold exactly one ``{}`` where the class name goes."""
    checked = [t.strip() for t in templates if t.strip()]
    if not checked:
        raise InvalidInput("give at least one prompt template, e.g. 'a photo of a {}.'", reason=Reason.NO_TEMPLATES)
    for template in checked:
        if template.count("{}") != 1:
            raise InvalidInput(
                f"template {template!r} needs exactly one '{{}}' for the class name", reason=Reason.BAD_TEMPLATE
            )
    return checked


def evaluate_zeroshot(client: Any, images: Sequence[LabelledImage], templates: Sequence[str]) -> dict[str, Any]:
    """The zero-shot report for ``images`` (already ingested into the stack ``client`` talks to)."""
    templates = check_templates(templates)
    names = sorted({image.label for image in images})
    if len(names) < 2:
        raise InvalidInput("zero-shot classification needs at least two classes", reason=Reason.TOO_FEW_CLASSES)
    prompts = [template.format(name) for name in names for template in templates]
    prompt_vectors = service.embed_texts(client, prompts).reshape(len(names), len(templates), -1)
    classes = metrics.class_vectors(prompt_vectors)
    image_vectors, _ = service.image_vectors(client, [image.asset_id for image in images])
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[image.label] for image in images])
    single = metrics.zero_shot_accuracy(image_vectors, metrics.class_vectors(prompt_vectors[:, :1]), labels)
    per_class = metrics.per_class_accuracy(image_vectors, classes, labels)
    return {
        "images": len(images),
        "classes": len(names),
        "templates": templates,
        "accuracy": metrics.zero_shot_accuracy(image_vectors, classes, labels),
        "accuracy_first_template_only": single,
        "chance_top1": round(100.0 / len(names), 2),
        "per_class_top1": {name: round(float(acc), 2) for name, acc in zip(names, per_class, strict=True)},
    }
