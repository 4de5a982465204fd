"""Raw vectors for clients that measure quality: texts embedded by the serving model, and the image
vectors ingestion stored.

Why expose them: ranking (SearchText) can only show text→image recall. Image→text recall, zero-shot
classification and the image–caption cosine need both sides' vectors, and taking them from the running
service (rather than re-embedding locally) means evaluations see exactly what search serves, so they
also catch decoding, preprocessing or indexing bugs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ordo.domain import SampleKind
from ordo.embedding.base import Embedder
from ordo.errors import InvalidInput, Reason
from ordo.ids import is_asset_id, sample_id_for
from ordo.ports.vector_index import VectorIndex

MAX_TEXTS_PER_CALL = 512
MAX_ASSETS_PER_CALL = 1000
MAX_TEXT_CHARS = 2000


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Unit vectors (n, dim) of ``texts``; refuses empty, too many or too long texts with a clear reason."""
    if not texts:
        raise InvalidInput("give at least one text to embed", reason=Reason.NO_TEXTS)
    if len(texts) > MAX_TEXTS_PER_CALL:
        raise InvalidInput(
            f"{len(texts)} texts in one call; send at most {MAX_TEXTS_PER_CALL} per call", reason=Reason.TOO_MANY_TEXTS
        )
    for index, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(f"text #{index} is empty or whitespace only", reason=Reason.EMPTY_TEXT)
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"text #{index} is longer than {MAX_TEXT_CHARS} characters", reason=Reason.TEXT_TOO_LONG)
    return np.asarray(embedder.embed_texts(list(texts)), dtype=np.float32)


def image_vectors(index: VectorIndex, asset_ids: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """``({asset_id: stored whole-image vector}, missing ids)``; ids keep request order in both."""
    if len(asset_ids) > MAX_ASSETS_PER_CALL:
        raise InvalidInput(
            f"{len(asset_ids)} asset ids in one call; send at most {MAX_ASSETS_PER_CALL} per call",
            reason=Reason.TOO_MANY_ASSETS,
        )
    for asset_id in asset_ids:
        if not is_asset_id(asset_id):
            raise InvalidInput(f"{asset_id!r} is not an asset id (64 lowercase hex digits)", reason=Reason.BAD_ASSET_ID)
    if not asset_ids or not index.dim:
        return {}, list(asset_ids)
    point_ids = {sample_id_for(asset_id, SampleKind.IMAGE): asset_id for asset_id in asset_ids}
    points = index.retrieve(list(point_ids), with_vectors=True)
    found = {point_ids[p.id]: np.asarray(p.vector, dtype=np.float32) for p in points if p.id in point_ids}
    ordered = {asset_id: found[asset_id] for asset_id in asset_ids if asset_id in found}
    return ordered, [asset_id for asset_id in asset_ids if asset_id not in found]
