"""AnalysisService: clustering and projection runs, clusters, renames, 2-D maps, near-duplicates.

Thin: validate request shapes, convert, call :class:`ordo.analysis.service.AnalysisCore`, convert back. Runs are
computed on the server's background pool; Create* answers at once with the Run (state RUNNING) and its Job,
which clients follow with ``IngestService.WatchJob`` (one job store for every kind of job).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor

import grpc

from ordo import paging
from ordo.analysis import runs as rs
from ordo.analysis.browse import DEFAULT_CELLS, MAX_CELLS, RunBrowser
from ordo.analysis.runs import ClusterInfo, RunRecord
from ordo.analysis.service import AnalysisCore, ClusteringRequest, ProjectionRequest
from ordo.app import AppContext
from ordo.domain import Filter
from ordo.errors import InvalidInput, Reason
from ordo.grpc_api import convert
from ordo.grpc_api.status import handle_errors, handle_stream_errors
from ordo.security.libraries import run_is_visible, run_visible, scope_filter
from ordo.v1 import analysis_pb2, analysis_pb2_grpc, common_pb2
from ordo.wire import KIND_TO_PB

DEFAULT_POINTS_PER_MESSAGE = 1000
MAX_POINTS_PER_MESSAGE = 10_000

_ALGORITHM: dict[int, str] = {
    analysis_pb2.CLUSTERING_ALGORITHM_UNSPECIFIED: "leiden",
    analysis_pb2.CLUSTERING_ALGORITHM_LEIDEN: "leiden",
    analysis_pb2.CLUSTERING_ALGORITHM_DBSCAN: "dbscan",
    analysis_pb2.CLUSTERING_ALGORITHM_HDBSCAN: "hdbscan",
    analysis_pb2.CLUSTERING_ALGORITHM_KMEANS: "kmeans",
}
_ALGORITHM_PB = {v: k for k, v in _ALGORITHM.items() if k != analysis_pb2.CLUSTERING_ALGORITHM_UNSPECIFIED}
_METHOD: dict[int, str] = {
    analysis_pb2.PROJECTION_METHOD_UNSPECIFIED: "tsne",
    analysis_pb2.PROJECTION_METHOD_TSNE: "tsne",
    analysis_pb2.PROJECTION_METHOD_UMAP: "umap",
    analysis_pb2.PROJECTION_METHOD_PCA: "pca",
}
_METHOD_PB = {v: k for k, v in _METHOD.items() if k != analysis_pb2.PROJECTION_METHOD_UNSPECIFIED}
_LEVEL: dict[int, str] = {
    analysis_pb2.CLUSTER_LEVEL_UNSPECIFIED: rs.LEAF,
    analysis_pb2.CLUSTER_LEVEL_LEAF: rs.LEAF,
    analysis_pb2.CLUSTER_LEVEL_GROUP: rs.GROUP,
}
_LEVEL_PB = {rs.LEAF: analysis_pb2.CLUSTER_LEVEL_LEAF, rs.GROUP: analysis_pb2.CLUSTER_LEVEL_GROUP}
_RUN_KIND = {rs.CLUSTERING: analysis_pb2.RUN_KIND_CLUSTERING, rs.PROJECTION: analysis_pb2.RUN_KIND_PROJECTION}
_RUN_KIND_FROM_PB: dict[int, str] = {v: k for k, v in _RUN_KIND.items()}
_RUN_STATE = {
    rs.RUNNING: analysis_pb2.RUN_STATE_RUNNING,
    rs.SUCCEEDED: analysis_pb2.RUN_STATE_SUCCEEDED,
    rs.FAILED: analysis_pb2.RUN_STATE_FAILED,
}


def _enum(value: int, table: dict[int, str], what: str) -> str:
    if value not in table:
        raise InvalidInput(f"unknown {what} {value}", reason=Reason.BAD_ENUM)
    return table[value]


def filter_pb(flt: Filter) -> common_pb2.Filter:
    """A domain filter back on the wire (what a run was computed over)."""
    msg = common_pb2.Filter(
        kinds=[common_pb2.SampleKind.Name(KIND_TO_PB[k]) for k in flt.kinds],
        asset_ids=list(flt.asset_ids),
        mime_types=list(flt.mime_types),
        source_uri_prefix=flt.source_uri_prefix,
        min_width=flt.min_width,
        min_height=flt.min_height,
        model_id=flt.model_id,
        cluster_ids=list(flt.cluster_ids),
        libraries=list(flt.libraries),
    )
    for name in ("captured_after", "captured_before", "ingested_after", "ingested_before"):
        value = getattr(flt, name)
        if value is not None:
            getattr(msg, name).CopyFrom(convert.timestamp(value))
    return msg


def run_pb(record: RunRecord) -> analysis_pb2.Run:
    p = record.params
    msg = analysis_pb2.Run(
        run_id=record.run_id,
        kind=_RUN_KIND[record.kind],
        model_id=record.model_id,
        filter=filter_pb(record.filter),
        sample_count=record.sample_count,
        cluster_count=record.cluster_count,
        create_time=convert.timestamp(record.created_at),
        seconds=record.seconds,
        job_id=record.job_id,
        state=_RUN_STATE[record.state],
        error=record.error,
        error_reason=record.error_reason,
        noise_count=record.noise_count,
        eps_used=record.eps_used or 0.0,
        previous_run_id=record.previous_run_id,
        clustering_run_id=record.clustering_run_id,
        stage_seconds=record.stage_seconds,
        group_count=record.group_count,
        resolution_used=record.resolution_used or 0.0,
        group_stability=record.group_stability or 0.0,
    )
    if record.kind == rs.CLUSTERING:
        msg.clustering.CopyFrom(
            analysis_pb2.ClusteringParams(
                algorithm=analysis_pb2.ClusteringAlgorithm.Name(_ALGORITHM_PB.get(p.get("algorithm", ""), 0)),
                eps=p.get("eps", 0.0),
                min_samples=p.get("min_samples", 0),
                min_cluster_size=p.get("min_cluster_size", 0),
                n_clusters=p.get("n_clusters", 0),
                resolution=p.get("resolution", 0.0),
            )
        )
    else:
        msg.projection.CopyFrom(
            analysis_pb2.ProjectionParams(
                method=analysis_pb2.ProjectionMethod.Name(_METHOD_PB.get(p.get("method", ""), 0)),
                perplexity=p.get("perplexity", 0.0),
                seed=p.get("seed", 0),
            )
        )
    if record.metrics is not None:
        m = record.metrics
        metrics = analysis_pb2.Metrics(
            noise_fraction=m.get("noise_fraction", 0.0),
            labelled_count=m.get("labelled_count", 0),
            largest_cluster_fraction=m.get("largest_cluster_fraction", 0.0),
        )
        for name in ("purity", "nmi", "ari", "silhouette", "group_purity", "group_nmi", "group_ari"):
            if m.get(name) is not None:
                setattr(metrics, name, m[name])
        msg.metrics.CopyFrom(metrics)
    return msg


def cluster_pb(info: ClusterInfo) -> analysis_pb2.Cluster:
    return analysis_pb2.Cluster(
        cluster_id=info.cluster_id,
        name=info.name,
        size=info.size,
        representative_asset_ids=info.representative_asset_ids,
        representative_sample_ids=info.representative_sample_ids,
        top_terms=info.top_terms,
        top_term_scores=info.top_term_scores,
        renamed=info.renamed,
        level=_LEVEL_PB.get(info.level, analysis_pb2.CLUSTER_LEVEL_LEAF),
        parent_id=info.parent_id,
        child_count=info.child_count,
    )


class AnalysisServicer(analysis_pb2_grpc.AnalysisServiceServicer):
    def __init__(self, ctx: AppContext, background: Executor) -> None:
        self.ctx = ctx
        self.background = background

    @property
    def core(self) -> AnalysisCore:
        return self.ctx.analysis_core()

    def _visible_run(self, run_id: str) -> RunRecord:
        """The run, or NOT_FOUND when it covers a library the caller may not read (ordo.security)."""
        record = self.core.get_run(run_id)
        run_visible(record.filter, run_id)
        return record

    @handle_errors
    def CreateClusteringRun(
        self, request: analysis_pb2.CreateClusteringRunRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.CreateClusteringRunResponse:
        p = request.params
        record, job = self.core.start_clustering(
            ClusteringRequest(
                filter=scope_filter(convert.filter_from_pb(request.filter)),
                algorithm=_enum(p.algorithm, _ALGORITHM, "clustering algorithm"),
                eps=p.eps,
                min_samples=p.min_samples,
                min_cluster_size=p.min_cluster_size,
                n_clusters=p.n_clusters,
                label_field=request.label_field,
                labels=dict(request.labels),
                resolution=p.resolution,
            ),
            self.background,
        )
        return analysis_pb2.CreateClusteringRunResponse(run=run_pb(record), job=convert.job_pb(job))

    @handle_errors
    def CreateProjectionRun(
        self, request: analysis_pb2.CreateProjectionRunRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.CreateProjectionRunResponse:
        p = request.params
        record, job = self.core.start_projection(
            ProjectionRequest(
                filter=scope_filter(convert.filter_from_pb(request.filter)),
                method=_enum(p.method, _METHOD, "projection method"),
                perplexity=p.perplexity,
                seed=p.seed,
                clustering_run_id=request.clustering_run_id,
            ),
            self.background,
        )
        return analysis_pb2.CreateProjectionRunResponse(run=run_pb(record), job=convert.job_pb(job))

    @handle_errors
    def GetRun(self, request: analysis_pb2.GetRunRequest, context: grpc.ServicerContext) -> analysis_pb2.GetRunResponse:
        return analysis_pb2.GetRunResponse(run=run_pb(self._visible_run(request.run_id)))

    @handle_errors
    def ListRuns(
        self, request: analysis_pb2.ListRunsRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.ListRunsResponse:
        kind = (
            ""
            if request.kind == analysis_pb2.RUN_KIND_UNSPECIFIED
            else _enum(request.kind, _RUN_KIND_FROM_PB, "run kind")
        )
        records, token = self.core.list_runs(paging.page_size(request.page_size), request.page_token, kind)
        records = [r for r in records if run_is_visible(r.filter)]
        return analysis_pb2.ListRunsResponse(runs=[run_pb(r) for r in records], next_page_token=token)

    @handle_errors
    def GetClusters(
        self, request: analysis_pb2.GetClustersRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.GetClustersResponse:
        self._visible_run(request.run_id)
        level = _enum(request.level, _LEVEL, "cluster level")
        clusters, token = RunBrowser(self.core.runs).clusters(
            request.run_id, paging.page_size(request.page_size), request.page_token, level, request.parent_id
        )
        return analysis_pb2.GetClustersResponse(clusters=[cluster_pb(c) for c in clusters], next_page_token=token)

    @handle_errors
    def RenameCluster(
        self, request: analysis_pb2.RenameClusterRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.RenameClusterResponse:
        if not request.cluster_id:
            raise InvalidInput("cluster_id is required", reason=Reason.MISSING_CLUSTER_ID)
        self._visible_run(request.run_id)
        info = self.core.rename_cluster(request.run_id, request.cluster_id, request.name)
        return analysis_pb2.RenameClusterResponse(cluster=cluster_pb(info))

    @handle_errors
    def MoveToCluster(
        self, request: analysis_pb2.MoveToClusterRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.MoveToClusterResponse:
        self._visible_run(request.run_id)
        result = self.core.move_to_cluster(
            request.run_id, list(request.asset_ids), request.cluster_id, request.new_cluster_name
        )
        return analysis_pb2.MoveToClusterResponse(
            cluster=cluster_pb(result.cluster) if result.cluster else None,
            moves=[analysis_pb2.MovedAsset(asset_id=a, previous_cluster_id=c) for a, c in result.moves],
            skipped_asset_ids=result.skipped,
        )

    @handle_stream_errors
    def GetProjection(
        self, request: analysis_pb2.GetProjectionRequest, context: grpc.ServicerContext
    ) -> Iterator[analysis_pb2.GetProjectionResponse]:
        size = paging.page_size(request.page_size, default=DEFAULT_POINTS_PER_MESSAGE, maximum=MAX_POINTS_PER_MESSAGE)
        self._visible_run(request.run_id)
        for page in self.core.projection_pages(request.run_id, size):
            if not context.is_active():
                return
            yield analysis_pb2.GetProjectionResponse(
                points=[
                    analysis_pb2.ProjectedPoint(sample_id=s, asset_id=a, x=float(xy[0]), y=float(xy[1]), cluster_id=c)
                    for s, a, xy, c in zip(page.sample_ids, page.asset_ids, page.coords, page.cluster_ids, strict=True)
                ]
            )

    @handle_errors
    def FindDuplicates(
        self, request: analysis_pb2.FindDuplicatesRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.FindDuplicatesResponse:
        groups, token = self.core.find_duplicates(
            scope_filter(convert.filter_from_pb(request.filter)),
            request.min_similarity or 0.95,
            paging.page_size(request.page_size),
            request.page_token,
        )
        return analysis_pb2.FindDuplicatesResponse(
            groups=[
                analysis_pb2.DuplicateGroup(asset_ids=g.asset_ids, min_similarity=g.min_similarity) for g in groups
            ],
            next_page_token=token,
        )

    @handle_errors
    def ListClusterMembers(
        self, request: analysis_pb2.ListClusterMembersRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.ListClusterMembersResponse:
        size = paging.page_size(request.page_size)
        self._visible_run(request.run_id)
        rows, token, total = RunBrowser(self.core.runs).members(
            request.run_id, request.cluster_id, size, request.page_token
        )
        return analysis_pb2.ListClusterMembersResponse(
            members=[
                analysis_pb2.ClusterMember(sample_id=s, asset_id=a, similarity=sim, cluster_id=c)
                for s, a, sim, c in rows
            ],
            next_page_token=token,
            total_size=total,
        )

    @handle_errors
    def CompareRuns(
        self, request: analysis_pb2.CompareRunsRequest, context: grpc.ServicerContext
    ) -> analysis_pb2.CompareRunsResponse:
        max_cells = _max_cells(request.max_cells)
        level = _enum(request.level, _LEVEL, "cluster level")
        self._visible_run(request.run_id_a)
        self._visible_run(request.run_id_b)
        c = RunBrowser(self.core.runs).compare(request.run_id_a, request.run_id_b, level, max_cells)
        return analysis_pb2.CompareRunsResponse(
            common_samples=c.common_samples,
            ari=c.ari,
            nmi=c.nmi,
            clusters_a=[analysis_pb2.ComparedCluster(cluster_id=i, name=n, size=z) for i, n, z in c.clusters_a],
            clusters_b=[analysis_pb2.ComparedCluster(cluster_id=i, name=n, size=z) for i, n, z in c.clusters_b],
            cells=[analysis_pb2.ContingencyCell(a_index=x, b_index=y, count=k) for x, y, k in c.cells],
            cells_truncated=c.cells_truncated,
            moves=[
                analysis_pb2.ClusterMove(a_index=x, b_index=y, count=k, example_asset_ids=ex) for x, y, k, ex in c.moves
            ],
            stayed=c.stayed,
            moved=c.moved,
        )


def _max_cells(value: int) -> int:
    """CompareRuns' cell budget: 0 is the default; not a page size, so over-max stays an error."""
    if value < 0 or value > MAX_CELLS:
        raise InvalidInput(f"max_cells must be between 0 and {MAX_CELLS}", reason=Reason.BAD_PAGE_SIZE)
    return value or DEFAULT_CELLS
