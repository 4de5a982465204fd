import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SampleKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLE_KIND_UNSPECIFIED: _ClassVar[SampleKind]
    SAMPLE_KIND_IMAGE: _ClassVar[SampleKind]
    SAMPLE_KIND_OBJECT: _ClassVar[SampleKind]
    SAMPLE_KIND_TEXT: _ClassVar[SampleKind]

class AssetState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSET_STATE_UNSPECIFIED: _ClassVar[AssetState]
    ASSET_STATE_PENDING: _ClassVar[AssetState]
    ASSET_STATE_READY: _ClassVar[AssetState]
    ASSET_STATE_FAILED: _ClassVar[AssetState]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_PARTIALLY_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_INGEST: _ClassVar[JobKind]
    JOB_KIND_REEMBED: _ClassVar[JobKind]
    JOB_KIND_RECOVER: _ClassVar[JobKind]
    JOB_KIND_CLUSTERING: _ClassVar[JobKind]
    JOB_KIND_PROJECTION: _ClassVar[JobKind]
SAMPLE_KIND_UNSPECIFIED: SampleKind
SAMPLE_KIND_IMAGE: SampleKind
SAMPLE_KIND_OBJECT: SampleKind
SAMPLE_KIND_TEXT: SampleKind
ASSET_STATE_UNSPECIFIED: AssetState
ASSET_STATE_PENDING: AssetState
ASSET_STATE_READY: AssetState
ASSET_STATE_FAILED: AssetState
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_PARTIALLY_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_INGEST: JobKind
JOB_KIND_REEMBED: JobKind
JOB_KIND_RECOVER: JobKind
JOB_KIND_CLUSTERING: JobKind
JOB_KIND_PROJECTION: JobKind

class BoundingBox(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Asset(_message.Message):
    __slots__ = ("asset_id", "source_uri", "file_name", "mime_type", "size_bytes", "width", "height", "capture_time", "ingest_time", "state", "error", "original_key", "thumbnail_key", "metadata", "model_id", "library")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    INGEST_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_KEY_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    source_uri: str
    file_name: str
    mime_type: str
    size_bytes: int
    width: int
    height: int
    capture_time: _timestamp_pb2.Timestamp
    ingest_time: _timestamp_pb2.Timestamp
    state: AssetState
    error: str
    original_key: str
    thumbnail_key: str
    metadata: _containers.ScalarMap[str, str]
    model_id: str
    library: str
    def __init__(self, asset_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., file_name: _Optional[str] = ..., mime_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ingest_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[AssetState, str]] = ..., error: _Optional[str] = ..., original_key: _Optional[str] = ..., thumbnail_key: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., model_id: _Optional[str] = ..., library: _Optional[str] = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("sample_id", "asset_id", "kind", "bbox", "label", "score", "polygon", "text", "index")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    asset_id: str
    kind: SampleKind
    bbox: BoundingBox
    label: str
    score: float
    polygon: _containers.RepeatedCompositeFieldContainer[Point]
    text: str
    index: int
    def __init__(self, sample_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., kind: _Optional[_Union[SampleKind, str]] = ..., bbox: _Optional[_Union[BoundingBox, _Mapping]] = ..., label: _Optional[str] = ..., score: _Optional[float] = ..., polygon: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., text: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class ProcessingOptions(_message.Message):
    __slots__ = ("detect_objects", "read_text")
    DETECT_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    READ_TEXT_FIELD_NUMBER: _ClassVar[int]
    detect_objects: bool
    read_text: bool
    def __init__(self, detect_objects: _Optional[bool] = ..., read_text: _Optional[bool] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("kinds", "asset_ids", "mime_types", "source_uri_prefix", "captured_after", "captured_before", "ingested_after", "ingested_before", "min_width", "min_height", "model_id", "cluster_ids", "libraries")
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
    CLUSTER_IDS_FIELD_NUMBER: _ClassVar[int]
    LIBRARIES_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[SampleKind]
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
    cluster_ids: _containers.RepeatedScalarFieldContainer[str]
    libraries: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kinds: _Optional[_Iterable[_Union[SampleKind, str]]] = ..., asset_ids: _Optional[_Iterable[str]] = ..., mime_types: _Optional[_Iterable[str]] = ..., source_uri_prefix: _Optional[str] = ..., captured_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., captured_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ingested_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ingested_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_width: _Optional[int] = ..., min_height: _Optional[int] = ..., model_id: _Optional[str] = ..., cluster_ids: _Optional[_Iterable[str]] = ..., libraries: _Optional[_Iterable[str]] = ...) -> None: ...

class FileFailure(_message.Message):
    __slots__ = ("source_uri", "reason", "message")
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    source_uri: str
    reason: str
    message: str
    def __init__(self, source_uri: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "seconds", "items")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    seconds: float
    items: int
    def __init__(self, stage: _Optional[str] = ..., seconds: _Optional[float] = ..., items: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "kind", "state", "total", "enumeration_done", "succeeded", "duplicates", "failed", "pending", "failures", "create_time", "update_time", "end_time", "eta_seconds", "rate_per_second", "stage_timings", "error", "asset_ids", "job_kind")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ENUMERATION_DONE_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STAGE_TIMINGS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    JOB_KIND_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: str
    state: JobState
    total: int
    enumeration_done: bool
    succeeded: int
    duplicates: int
    failed: int
    pending: int
    failures: _containers.RepeatedCompositeFieldContainer[FileFailure]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    eta_seconds: float
    rate_per_second: float
    stage_timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    error: str
    asset_ids: _containers.RepeatedScalarFieldContainer[str]
    job_kind: JobKind
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., total: _Optional[int] = ..., enumeration_done: _Optional[bool] = ..., succeeded: _Optional[int] = ..., duplicates: _Optional[int] = ..., failed: _Optional[int] = ..., pending: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[FileFailure, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., eta_seconds: _Optional[float] = ..., rate_per_second: _Optional[float] = ..., stage_timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., error: _Optional[str] = ..., asset_ids: _Optional[_Iterable[str]] = ..., job_kind: _Optional[_Union[JobKind, str]] = ...) -> None: ...
