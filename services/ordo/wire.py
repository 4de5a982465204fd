"""Enum mappings between Ordo's domain types and their protobuf twins, shared by both boundaries that
speak protobuf: the gRPC servicers and the queue payload."""

from __future__ import annotations

from ordo.domain import SampleKind
from ordo.v1 import common_pb2

KIND_TO_PB: dict[SampleKind, int] = {
    SampleKind.IMAGE: common_pb2.SAMPLE_KIND_IMAGE,
    SampleKind.OBJECT: common_pb2.SAMPLE_KIND_OBJECT,
    SampleKind.TEXT: common_pb2.SAMPLE_KIND_TEXT,
}
PB_TO_KIND: dict[int, SampleKind] = {v: k for k, v in KIND_TO_PB.items()}
