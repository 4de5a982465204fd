"""The evaluation's side of the gRPC contracts: vectors and rankings from a running Ordo stack.

Everything here goes through the public RPCs (SearchText, EmbedTexts, GetImageVectors) so an evaluation
measures what users get, including decoding, preprocessing, indexing and the model the service loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ordo.errors import InvalidInput, Reason

TEXT_BATCH = 256  # below the service's 512 per call
ASSET_BATCH = 500  # below the service's 1000 per call; 500 x 512 floats stays far under the message limit
SEARCH_THREADS = 4  # concurrent SearchText calls: hides RPC latency, the server embeds on one lane anyway


def embed_texts(client: Any, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """(n, d) unit vectors from the service's model, via EmbedTexts in batches."""
    from ordo.v1 import search_pb2

    parts = []
    for start in range(0, len(texts), TEXT_BATCH):
        chunk = list(texts[start : start + TEXT_BATCH])
        response = client.search.EmbedTexts(search_pb2.EmbedTextsRequest(texts=chunk))
        parts.append(np.array([list(v.values) for v in response.vectors], dtype=np.float32))
        if on_batch:
            on_batch(len(chunk))
    return np.concatenate(parts, axis=0)


def image_vectors(client: Any, asset_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """``(vectors, missing)``: the stored image vectors in ``asset_ids`` order. Raises when any is missing,
    since a silently shorter set would inflate recall; ``missing`` is returned for the message."""
    from ordo.v1 import search_pb2

    found: dict[str, np.ndarray] = {}
    missing: list[str] = []
    for start in range(0, len(asset_ids), ASSET_BATCH):
        chunk = list(asset_ids[start : start + ASSET_BATCH])
        response = client.search.GetImageVectors(search_pb2.GetImageVectorsRequest(asset_ids=chunk))
        for item in response.vectors:
            found[item.asset_id] = np.asarray(item.vector.values, dtype=np.float32)
        missing.extend(response.missing_asset_ids)
    if missing:
        raise InvalidInput(
            f"{len(missing)} of {len(asset_ids)} images have no vector in the scratch collection "
            f"(failed to ingest?), e.g. {missing[0]}",
            reason=Reason.IMAGES_NOT_INDEXED,
        )
    return np.stack([found[a] for a in asset_ids]), missing


def search_ranks(
    client: Any,
    queries: Sequence[str],
    targets: Sequence[str],
    top_k: int = 10,
    on_query: Callable[[], None] | None = None,
) -> np.ndarray:
    """0-based rank of ``targets[i]`` (an asset id) in SearchText(``queries[i]``); ``top_k`` when not in the top k.

    This is the search service's own ranking (its index, its filters, its scores), not a local re-ranking.
    """
    from ordo.v1 import search_pb2

    def one(i: int) -> int:
        response = client.search.SearchText(search_pb2.SearchTextRequest(query=queries[i], page_size=top_k))
        if on_query:
            on_query()
        for hit in response.hits:
            if hit.asset.asset_id == targets[i]:
                return hit.rank - 1
        return top_k

    with ThreadPoolExecutor(SEARCH_THREADS) as pool:
        return np.fromiter(pool.map(one, range(len(queries))), dtype=np.int64, count=len(queries))
