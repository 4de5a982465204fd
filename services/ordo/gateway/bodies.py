"""Request bodies of the search and analysis routes, and their translation to ``ordo.v1`` messages."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from google.protobuf.json_format import ParseDict
from pydantic import AliasChoices, BaseModel, Field

from ordo.paging import MAX_TOKEN_CHARS
from ordo.v1 import common_pb2

SampleKindName = Literal["image", "object", "text"]


class FilterBody(BaseModel):
    """Restricts a search. Empty fields do not restrict (as ``ordo.v1.Filter``)."""

    kinds: list[SampleKindName] = Field(default_factory=list)
    asset_ids: list[str] = Field(default_factory=list, description="Only these assets.")
    cluster_ids: list[str] = Field(default_factory=list, description="Only these clusters (latest clustering run).")
    mime_types: list[str] = Field(default_factory=list)
    source_uri_prefix: str = ""
    captured_after: datetime | None = None
    captured_before: datetime | None = None
    ingested_after: datetime | None = None
    ingested_before: datetime | None = None
    min_width: int = 0
    min_height: int = 0

    def to_pb(self) -> common_pb2.Filter:
        data = self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        data["kinds"] = [f"SAMPLE_KIND_{k.upper()}" for k in self.kinds]
        return ParseDict(data, common_pb2.Filter())


class SearchBody(BaseModel):
    """Search by ``query`` text, or by ``asset_id`` ("more like this"); exactly one of them."""

    query: str | None = None
    asset_id: str | None = None
    # ``page_size`` as in every list (AIP-158); ``top_k``, its name before, is still accepted.
    page_size: int = Field(20, ge=1, le=1000, validation_alias=AliasChoices("page_size", "top_k"))
    page_token: str = Field("", max_length=MAX_TOKEN_CHARS)
    min_score: float = 0.0
    exclude_self: bool = True
    include_total_size: bool = Field(
        default=False, description="Also answer `total_size` (counted once, for the first page; later pages carry it)."
    )
    filter: FilterBody = Field(default_factory=FilterBody)


class ClusteringBody(BaseModel):
    algorithm: Literal["leiden", "dbscan", "hdbscan", "kmeans", ""] = ""
    resolution: float = Field(0.0, ge=0.0, le=50.0)
    eps: float = 0.0
    min_samples: int = 0
    min_cluster_size: int = 0
    n_clusters: int = 0
    filter: FilterBody = Field(default_factory=FilterBody)
    label_field: str = ""


class ProjectionBody(BaseModel):
    method: Literal["tsne", "umap", "pca", ""] = ""
    perplexity: float = 0.0
    seed: int = 0
    clustering_run_id: str = ""
    filter: FilterBody = Field(default_factory=FilterBody)


class RenameBody(BaseModel):
    name: str


class MoveBody(BaseModel):
    """``MoveToCluster``'s fields; the RPC bounds them (1–1000 asset ids, one target), the gateway only the list."""

    asset_ids: list[str] = Field(..., max_length=1000, description="The images to move (1–1000 asset ids).")
    cluster_id: str = Field("", max_length=64, description='A leaf of the run, or "noise".')
    new_cluster_name: str = Field("", max_length=200, description="A name for a new leaf to move them into.")


def pb_enum(prefix: str, value: str) -> str:
    """A REST enum value (``"kmeans"``) as the proto enum's name (``CLUSTERING_ALGORITHM_KMEANS``)."""
    return f"{prefix}_{value.upper()}" if value else f"{prefix}_UNSPECIFIED"
