from ordo.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SampleRef(_message.Message):
    __slots__ = ("asset_id", "original_key", "kind", "bbox", "source_uri", "file_name")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    original_key: str
    kind: _common_pb2.SampleKind
    bbox: _common_pb2.BoundingBox
    source_uri: str
    file_name: str
    def __init__(self, asset_id: _Optional[str] = ..., original_key: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.SampleKind, str]] = ..., bbox: _Optional[_Union[_common_pb2.BoundingBox, _Mapping]] = ..., source_uri: _Optional[str] = ..., file_name: _Optional[str] = ...) -> None: ...

class EmbedBatch(_message.Message):
    __slots__ = ("batch_id", "job_id", "samples", "collection", "model_id", "version", "processing")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    job_id: str
    samples: _containers.RepeatedCompositeFieldContainer[SampleRef]
    collection: str
    model_id: str
    version: int
    processing: _common_pb2.ProcessingOptions
    def __init__(self, batch_id: _Optional[str] = ..., job_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[SampleRef, _Mapping]]] = ..., collection: _Optional[str] = ..., model_id: _Optional[str] = ..., version: _Optional[int] = ..., processing: _Optional[_Union[_common_pb2.ProcessingOptions, _Mapping]] = ...) -> None: ...
