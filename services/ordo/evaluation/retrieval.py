"""Image–text retrieval on a captioned folder, measured on a live stack.

text→image: every caption is a SearchText query against the scratch collection; the service's own ranking
decides the hit (R@1/5/10). image→text and the seed's image–caption cosine need vectors on both sides:
the stored image vectors (GetImageVectors) and the captions embedded by the serving model (EmbedTexts).
text→image is also recomputed from those vectors; the two agree unless the index or the ranking path is
broken, so the report carries their agreement as a built-in consistency check (near-ties aside: SCORE_TIE).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ordo.evaluation import metrics, service
from ordo.evaluation.datasets import CaptionedImage

TOP_K = 10
# Scores this close count as ties in the consistency check. EmbedTexts embeds captions in batches, which may run
# in bfloat16 (``ordo.embedding.traced_text_runtime``), while each SearchText query here runs alone in float32:
# the two vectors of a caption differed by at most 0.0058 in norm (300 COCO captions, ordo-lite, a 2-core EPYC
# with AVX512-BF16), so each image's score moves by less than that, and two images closer than ~0.01 may swap.
SCORE_TIE = 0.01


def evaluate_retrieval(
    client: Any,
    images: Sequence[CaptionedImage],
    *,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """The retrieval report for ``images`` (already ingested into the stack ``client`` talks to)."""
    started = time.perf_counter()
    asset_ids = [image.asset_id for image in images]
    captions = [caption for image in images for caption in image.captions]
    owner = np.repeat(np.arange(len(images)), [len(image.captions) for image in images])

    image_vectors, _ = service.image_vectors(client, asset_ids)
    done = {"texts": 0, "queries": 0}

    def advanced(stage: str, total: int) -> Callable[..., None]:
        def step(count: int = 1) -> None:
            done[stage] += count
            if on_progress:
                on_progress(stage, done[stage], total)

        return step

    text_vectors = service.embed_texts(client, captions, on_batch=advanced("texts", len(captions)))
    embedded = time.perf_counter()
    served_ranks = service.search_ranks(
        client, captions, [asset_ids[i] for i in owner], top_k=TOP_K, on_query=advanced("queries", len(captions))
    )
    searched = time.perf_counter()

    t2i_vector_ranks = metrics.text_to_image_ranks(image_vectors, text_vectors, owner)
    i2t_ranks = metrics.image_to_text_ranks(image_vectors, text_vectors, owner)
    best, worst = metrics.text_to_image_rank_bounds(image_vectors, text_vectors, owner, SCORE_TIE)
    served = np.asarray(served_ranks)
    agreement = float(((np.minimum(best, TOP_K) <= served) & (served <= np.minimum(worst, TOP_K))).mean())
    return {
        "images": len(images),
        "captions": len(captions),
        "text_to_image": {**metrics.recall_at(served_ranks), **metrics.rank_summary(t2i_vector_ranks)},
        "image_to_text": {**metrics.recall_at(i2t_ranks), **metrics.rank_summary(i2t_ranks)},
        "cosine": {
            "image_own_captions": round(metrics.mean_own_cosine(image_vectors, text_vectors, owner), 4),
            "image_other_captions": round(metrics.mean_other_cosine(image_vectors, text_vectors, owner), 4),
        },
        "consistency": {
            "text_to_image_from_vectors": metrics.recall_at(t2i_vector_ranks),
            "search_agrees_with_vectors": round(100.0 * agreement, 2),
        },
        "seconds": {
            "vectors": round(embedded - started, 2),
            "search": round(searched - embedded, 2),
            "queries_per_second": round(len(captions) / max(searched - embedded, 1e-9), 1),
        },
    }
