from ordo.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_SEMANTIC: _ClassVar[SearchMode]
    SEARCH_MODE_KEYWORD: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_SEMANTIC: SearchMode
SEARCH_MODE_KEYWORD: SearchMode
SEARCH_MODE_HYBRID: SearchMode

class SearchHit(_message.Message):
    __slots__ = ("asset", "sample", "score", "rank", "semantic_score", "keyword_score")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_SCORE_FIELD_NUMBER: _ClassVar[int]
    asset: _common_pb2.Asset
    sample: _common_pb2.Sample
    score: float
    rank: int
    semantic_score: float
    keyword_score: float
    def __init__(self, asset: _Optional[_Union[_common_pb2.Asset, _Mapping]] = ..., sample: _Optional[_Union[_common_pb2.Sample, _Mapping]] = ..., score: _Optional[float] = ..., rank: _Optional[int] = ..., semantic_score: _Optional[float] = ..., keyword_score: _Optional[float] = ...) -> None: ...

class SearchTextRequest(_message.Message):
    __slots__ = ("query", "filter", "page_size", "page_token", "min_score", "mode", "include_total_size")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    query: str
    filter: _common_pb2.Filter
    page_size: int
    page_token: str
    min_score: float
    mode: SearchMode
    include_total_size: bool
    def __init__(self, query: _Optional[str] = ..., filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_score: _Optional[float] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., include_total_size: _Optional[bool] = ...) -> None: ...

class SearchTextResponse(_message.Message):
    __slots__ = ("hits", "next_page_token", "model_id", "total_size", "total_size_capped")
    HITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_CAPPED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    next_page_token: str
    model_id: str
    total_size: int
    total_size_capped: bool
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., model_id: _Optional[str] = ..., total_size: _Optional[int] = ..., total_size_capped: _Optional[bool] = ...) -> None: ...

class SearchImageRequest(_message.Message):
    __slots__ = ("image", "asset_id", "filter", "page_size", "page_token", "min_score", "exclude_self", "include_total_size")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SELF_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    asset_id: str
    filter: _common_pb2.Filter
    page_size: int
    page_token: str
    min_score: float
    exclude_self: bool
    include_total_size: bool
    def __init__(self, image: _Optional[bytes] = ..., asset_id: _Optional[str] = ..., filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_score: _Optional[float] = ..., exclude_self: _Optional[bool] = ..., include_total_size: _Optional[bool] = ...) -> None: ...

class SearchImageResponse(_message.Message):
    __slots__ = ("hits", "next_page_token", "model_id", "total_size", "total_size_capped")
    HITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_CAPPED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    next_page_token: str
    model_id: str
    total_size: int
    total_size_capped: bool
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., model_id: _Optional[str] = ..., total_size: _Optional[int] = ..., total_size_capped: _Optional[bool] = ...) -> None: ...

class EmbedTextsRequest(_message.Message):
    __slots__ = ("texts",)
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, texts: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbeddingVector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedTextsResponse(_message.Message):
    __slots__ = ("vectors", "model_id", "dim")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[EmbeddingVector]
    model_id: str
    dim: int
    def __init__(self, vectors: _Optional[_Iterable[_Union[EmbeddingVector, _Mapping]]] = ..., model_id: _Optional[str] = ..., dim: _Optional[int] = ...) -> None: ...

class GetImageVectorsRequest(_message.Message):
    __slots__ = ("asset_ids",)
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    asset_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, asset_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AssetVector(_message.Message):
    __slots__ = ("asset_id", "vector")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    vector: EmbeddingVector
    def __init__(self, asset_id: _Optional[str] = ..., vector: _Optional[_Union[EmbeddingVector, _Mapping]] = ...) -> None: ...

class GetImageVectorsResponse(_message.Message):
    __slots__ = ("vectors", "missing_asset_ids", "model_id")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    MISSING_ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[AssetVector]
    missing_asset_ids: _containers.RepeatedScalarFieldContainer[str]
    model_id: str
    def __init__(self, vectors: _Optional[_Iterable[_Union[AssetVector, _Mapping]]] = ..., missing_asset_ids: _Optional[_Iterable[str]] = ..., model_id: _Optional[str] = ...) -> None: ...
