import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IndexPoint(_message.Message):
    __slots__ = ("id", "vector", "payload_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    payload_json: bytes
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., payload_json: _Optional[bytes] = ...) -> None: ...

class IndexScoredPoint(_message.Message):
    __slots__ = ("id", "score", "payload_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    payload_json: bytes
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., payload_json: _Optional[bytes] = ...) -> None: ...

class IndexFilter(_message.Message):
    __slots__ = ("kinds", "asset_ids", "mime_types", "source_uri_prefix", "captured_after", "captured_before", "ingested_after", "ingested_before", "min_width", "min_height", "model_id", "exclude_asset_ids", "text_any", "cluster_ids", "libraries")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    INGESTED_AFTER_FIELD_NUMBER: _ClassVar[int]
    INGESTED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    MIN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MIN_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_ANY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_IDS_FIELD_NUMBER: _ClassVar[int]
    LIBRARIES_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    asset_ids: _containers.RepeatedScalarFieldContainer[str]
    mime_types: _containers.RepeatedScalarFieldContainer[str]
    source_uri_prefix: str
    captured_after: _timestamp_pb2.Timestamp
    captured_before: _timestamp_pb2.Timestamp
    ingested_after: _timestamp_pb2.Timestamp
    ingested_before: _timestamp_pb2.Timestamp
    min_width: int
    min_height: int
    model_id: str
    exclude_asset_ids: _containers.RepeatedScalarFieldContainer[str]
    text_any: str
    cluster_ids: _containers.RepeatedScalarFieldContainer[str]
    libraries: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kinds: _Optional[_Iterable[str]] = ..., asset_ids: _Optional[_Iterable[str]] = ..., mime_types: _Optional[_Iterable[str]] = ..., source_uri_prefix: _Optional[str] = ..., captured_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., captured_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ingested_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ingested_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_width: _Optional[int] = ..., min_height: _Optional[int] = ..., model_id: _Optional[str] = ..., exclude_asset_ids: _Optional[_Iterable[str]] = ..., text_any: _Optional[str] = ..., cluster_ids: _Optional[_Iterable[str]] = ..., libraries: _Optional[_Iterable[str]] = ...) -> None: ...

class EnsureCollectionRequest(_message.Message):
    __slots__ = ("collection", "dim")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    collection: str
    dim: int
    def __init__(self, collection: _Optional[str] = ..., dim: _Optional[int] = ...) -> None: ...

class EnsureCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCollectionInfoRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class GetCollectionInfoResponse(_message.Message):
    __slots__ = ("dim",)
    DIM_FIELD_NUMBER: _ClassVar[int]
    dim: int
    def __init__(self, dim: _Optional[int] = ...) -> None: ...

class UpsertPointsRequest(_message.Message):
    __slots__ = ("collection", "points")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    points: _containers.RepeatedCompositeFieldContainer[IndexPoint]
    def __init__(self, collection: _Optional[str] = ..., points: _Optional[_Iterable[_Union[IndexPoint, _Mapping]]] = ...) -> None: ...

class UpsertPointsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SearchPointsRequest(_message.Message):
    __slots__ = ("collection", "vector", "limit", "offset", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    limit: int
    offset: int
    filter: IndexFilter
    def __init__(self, collection: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., filter: _Optional[_Union[IndexFilter, _Mapping]] = ...) -> None: ...

class SearchPointsResponse(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[IndexScoredPoint]
    def __init__(self, hits: _Optional[_Iterable[_Union[IndexScoredPoint, _Mapping]]] = ...) -> None: ...

class RetrievePointsRequest(_message.Message):
    __slots__ = ("collection", "ids", "with_vectors")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTORS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    with_vectors: bool
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., with_vectors: _Optional[bool] = ...) -> None: ...

class RetrievePointsResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[IndexPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[IndexPoint, _Mapping]]] = ...) -> None: ...

class DeletePointsByAssetRequest(_message.Message):
    __slots__ = ("collection", "asset_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    asset_id: str
    def __init__(self, collection: _Optional[str] = ..., asset_id: _Optional[str] = ...) -> None: ...

class DeletePointsByAssetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CountPointsRequest(_message.Message):
    __slots__ = ("collection", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: IndexFilter
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[IndexFilter, _Mapping]] = ...) -> None: ...

class CountPointsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ScrollPointsRequest(_message.Message):
    __slots__ = ("collection", "filter", "with_vectors", "page_size")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTORS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: IndexFilter
    with_vectors: bool
    page_size: int
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[IndexFilter, _Mapping]] = ..., with_vectors: _Optional[bool] = ..., page_size: _Optional[int] = ...) -> None: ...

class ScrollPointsResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[IndexPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[IndexPoint, _Mapping]]] = ...) -> None: ...

class SetPayloadRequest(_message.Message):
    __slots__ = ("collection", "ids", "payload_json")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    payload_json: bytes
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., payload_json: _Optional[bytes] = ...) -> None: ...

class SetPayloadResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
