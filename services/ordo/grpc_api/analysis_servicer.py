"""AnalysisService: declared in the contract, implemented by the analysis milestone.

Every method answers UNIMPLEMENTED with a message saying so (no stub data that could be mistaken for
results)."""

from __future__ import annotations

from typing import Any

import grpc

from ordo.grpc_api.status import abort
from ordo.v1 import analysis_pb2_grpc

MESSAGE = "the analysis service (clustering, projection, duplicates) is not implemented in this release yet"


def _unimplemented(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
    abort(context, grpc.StatusCode.UNIMPLEMENTED, MESSAGE, "NOT_IMPLEMENTED_YET")


class AnalysisServicer(analysis_pb2_grpc.AnalysisServiceServicer):
    CreateClusteringRun = _unimplemented
    CreateProjectionRun = _unimplemented
    GetRun = _unimplemented
    ListRuns = _unimplemented
    GetClusters = _unimplemented
    RenameCluster = _unimplemented
    GetProjection = _unimplemented
    FindDuplicates = _unimplemented
