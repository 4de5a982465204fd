import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ordo.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FileOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_OUTCOME_UNSPECIFIED: _ClassVar[FileOutcome]
    FILE_OUTCOME_NEW: _ClassVar[FileOutcome]
    FILE_OUTCOME_DUPLICATE: _ClassVar[FileOutcome]
    FILE_OUTCOME_FAILED: _ClassVar[FileOutcome]

class AssetContentVariant(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSET_CONTENT_VARIANT_UNSPECIFIED: _ClassVar[AssetContentVariant]
    ASSET_CONTENT_VARIANT_ORIGINAL: _ClassVar[AssetContentVariant]
    ASSET_CONTENT_VARIANT_THUMBNAIL: _ClassVar[AssetContentVariant]

class ModelVersionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_VERSION_STATE_UNSPECIFIED: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_ACTIVE: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_BUILDING: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_READY: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_FAILED: _ClassVar[ModelVersionState]
FILE_OUTCOME_UNSPECIFIED: FileOutcome
FILE_OUTCOME_NEW: FileOutcome
FILE_OUTCOME_DUPLICATE: FileOutcome
FILE_OUTCOME_FAILED: FileOutcome
ASSET_CONTENT_VARIANT_UNSPECIFIED: AssetContentVariant
ASSET_CONTENT_VARIANT_ORIGINAL: AssetContentVariant
ASSET_CONTENT_VARIANT_THUMBNAIL: AssetContentVariant
MODEL_VERSION_STATE_UNSPECIFIED: ModelVersionState
MODEL_VERSION_STATE_ACTIVE: ModelVersionState
MODEL_VERSION_STATE_BUILDING: ModelVersionState
MODEL_VERSION_STATE_READY: ModelVersionState
MODEL_VERSION_STATE_FAILED: ModelVersionState

class UploadFileHeader(_message.Message):
    __slots__ = ("file_name", "mime_type", "size_bytes", "source_uri", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    mime_type: str
    size_bytes: int
    source_uri: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, file_name: _Optional[str] = ..., mime_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., source_uri: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UploadImagesRequest(_message.Message):
    __slots__ = ("header", "chunk", "request_id", "processing", "library")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    header: UploadFileHeader
    chunk: bytes
    request_id: str
    processing: _common_pb2.ProcessingOptions
    library: str
    def __init__(self, header: _Optional[_Union[UploadFileHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., request_id: _Optional[str] = ..., processing: _Optional[_Union[_common_pb2.ProcessingOptions, _Mapping]] = ..., library: _Optional[str] = ...) -> None: ...

class FileResult(_message.Message):
    __slots__ = ("file_name", "source_uri", "outcome", "asset_id", "failure")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    source_uri: str
    outcome: FileOutcome
    asset_id: str
    failure: _common_pb2.FileFailure
    def __init__(self, file_name: _Optional[str] = ..., source_uri: _Optional[str] = ..., outcome: _Optional[_Union[FileOutcome, str]] = ..., asset_id: _Optional[str] = ..., failure: _Optional[_Union[_common_pb2.FileFailure, _Mapping]] = ...) -> None: ...

class UploadImagesResponse(_message.Message):
    __slots__ = ("job", "results", "stream_error")
    JOB_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STREAM_ERROR_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    results: _containers.RepeatedCompositeFieldContainer[FileResult]
    stream_error: _common_pb2.FileFailure
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ..., results: _Optional[_Iterable[_Union[FileResult, _Mapping]]] = ..., stream_error: _Optional[_Union[_common_pb2.FileFailure, _Mapping]] = ...) -> None: ...

class IngestUrisRequest(_message.Message):
    __slots__ = ("uris", "non_recursive", "request_id", "processing", "library")
    URIS_FIELD_NUMBER: _ClassVar[int]
    NON_RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    uris: _containers.RepeatedScalarFieldContainer[str]
    non_recursive: bool
    request_id: str
    processing: _common_pb2.ProcessingOptions
    library: str
    def __init__(self, uris: _Optional[_Iterable[str]] = ..., non_recursive: _Optional[bool] = ..., request_id: _Optional[str] = ..., processing: _Optional[_Union[_common_pb2.ProcessingOptions, _Mapping]] = ..., library: _Optional[str] = ...) -> None: ...

class IngestUrisResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_common_pb2.Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class GetAssetRequest(_message.Message):
    __slots__ = ("asset_id",)
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    def __init__(self, asset_id: _Optional[str] = ...) -> None: ...

class GetAssetResponse(_message.Message):
    __slots__ = ("asset", "samples")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    asset: _common_pb2.Asset
    samples: _containers.RepeatedCompositeFieldContainer[_common_pb2.Sample]
    def __init__(self, asset: _Optional[_Union[_common_pb2.Asset, _Mapping]] = ..., samples: _Optional[_Iterable[_Union[_common_pb2.Sample, _Mapping]]] = ...) -> None: ...

class GetAssetContentRequest(_message.Message):
    __slots__ = ("asset_id", "variant")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    variant: AssetContentVariant
    def __init__(self, asset_id: _Optional[str] = ..., variant: _Optional[_Union[AssetContentVariant, str]] = ...) -> None: ...

class GetAssetContentResponse(_message.Message):
    __slots__ = ("mime_type", "size_bytes", "chunk")
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    mime_type: str
    size_bytes: int
    chunk: bytes
    def __init__(self, mime_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ListAssetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListAssetsResponse(_message.Message):
    __slots__ = ("assets", "next_page_token")
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    assets: _containers.RepeatedCompositeFieldContainer[_common_pb2.Asset]
    next_page_token: str
    def __init__(self, assets: _Optional[_Iterable[_Union[_common_pb2.Asset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteAssetRequest(_message.Message):
    __slots__ = ("asset_id",)
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    def __init__(self, asset_id: _Optional[str] = ...) -> None: ...

class DeleteAssetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("asset_count", "vector_count", "model_id", "embedding_dim", "mode", "vector_backend", "object_backend", "queue_backend", "device", "model", "collection", "model_reason")
    ASSET_COUNT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIM_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_BACKEND_FIELD_NUMBER: _ClassVar[int]
    OBJECT_BACKEND_FIELD_NUMBER: _ClassVar[int]
    QUEUE_BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_REASON_FIELD_NUMBER: _ClassVar[int]
    asset_count: int
    vector_count: int
    model_id: str
    embedding_dim: int
    mode: str
    vector_backend: str
    object_backend: str
    queue_backend: str
    device: str
    model: str
    collection: str
    model_reason: str
    def __init__(self, asset_count: _Optional[int] = ..., vector_count: _Optional[int] = ..., model_id: _Optional[str] = ..., embedding_dim: _Optional[int] = ..., mode: _Optional[str] = ..., vector_backend: _Optional[str] = ..., object_backend: _Optional[str] = ..., queue_backend: _Optional[str] = ..., device: _Optional[str] = ..., model: _Optional[str] = ..., collection: _Optional[str] = ..., model_reason: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("model", "model_id", "collection", "state", "job_id", "reason", "vector_count", "create_time", "activate_time", "error")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VECTOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_id: str
    collection: str
    state: ModelVersionState
    job_id: str
    reason: str
    vector_count: int
    create_time: _timestamp_pb2.Timestamp
    activate_time: _timestamp_pb2.Timestamp
    error: str
    def __init__(self, model: _Optional[str] = ..., model_id: _Optional[str] = ..., collection: _Optional[str] = ..., state: _Optional[_Union[ModelVersionState, str]] = ..., job_id: _Optional[str] = ..., reason: _Optional[str] = ..., vector_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., activate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class ListModelVersionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class ActivateModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ActivateModelResponse(_message.Message):
    __slots__ = ("version", "job")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    version: ModelVersion
    job: _common_pb2.Job
    def __init__(self, version: _Optional[_Union[ModelVersion, _Mapping]] = ..., job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class ResumeJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ResumeJobResponse(_message.Message):
    __slots__ = ("job", "requeued", "tasks")
    JOB_FIELD_NUMBER: _ClassVar[int]
    REQUEUED_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    requeued: int
    tasks: int
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ..., requeued: _Optional[int] = ..., tasks: _Optional[int] = ...) -> None: ...
