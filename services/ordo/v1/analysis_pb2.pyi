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

class ClusteringAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLUSTERING_ALGORITHM_UNSPECIFIED: _ClassVar[ClusteringAlgorithm]
    CLUSTERING_ALGORITHM_DBSCAN: _ClassVar[ClusteringAlgorithm]
    CLUSTERING_ALGORITHM_HDBSCAN: _ClassVar[ClusteringAlgorithm]
    CLUSTERING_ALGORITHM_KMEANS: _ClassVar[ClusteringAlgorithm]
    CLUSTERING_ALGORITHM_LEIDEN: _ClassVar[ClusteringAlgorithm]

class ClusterLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLUSTER_LEVEL_UNSPECIFIED: _ClassVar[ClusterLevel]
    CLUSTER_LEVEL_LEAF: _ClassVar[ClusterLevel]
    CLUSTER_LEVEL_GROUP: _ClassVar[ClusterLevel]

class ProjectionMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROJECTION_METHOD_UNSPECIFIED: _ClassVar[ProjectionMethod]
    PROJECTION_METHOD_TSNE: _ClassVar[ProjectionMethod]
    PROJECTION_METHOD_UMAP: _ClassVar[ProjectionMethod]
    PROJECTION_METHOD_PCA: _ClassVar[ProjectionMethod]

class RunKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_KIND_UNSPECIFIED: _ClassVar[RunKind]
    RUN_KIND_CLUSTERING: _ClassVar[RunKind]
    RUN_KIND_PROJECTION: _ClassVar[RunKind]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
CLUSTERING_ALGORITHM_UNSPECIFIED: ClusteringAlgorithm
CLUSTERING_ALGORITHM_DBSCAN: ClusteringAlgorithm
CLUSTERING_ALGORITHM_HDBSCAN: ClusteringAlgorithm
CLUSTERING_ALGORITHM_KMEANS: ClusteringAlgorithm
CLUSTERING_ALGORITHM_LEIDEN: ClusteringAlgorithm
CLUSTER_LEVEL_UNSPECIFIED: ClusterLevel
CLUSTER_LEVEL_LEAF: ClusterLevel
CLUSTER_LEVEL_GROUP: ClusterLevel
PROJECTION_METHOD_UNSPECIFIED: ProjectionMethod
PROJECTION_METHOD_TSNE: ProjectionMethod
PROJECTION_METHOD_UMAP: ProjectionMethod
PROJECTION_METHOD_PCA: ProjectionMethod
RUN_KIND_UNSPECIFIED: RunKind
RUN_KIND_CLUSTERING: RunKind
RUN_KIND_PROJECTION: RunKind
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState

class ClusteringParams(_message.Message):
    __slots__ = ("algorithm", "eps", "min_samples", "min_cluster_size", "n_clusters", "resolution")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    EPS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MIN_CLUSTER_SIZE_FIELD_NUMBER: _ClassVar[int]
    N_CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    algorithm: ClusteringAlgorithm
    eps: float
    min_samples: int
    min_cluster_size: int
    n_clusters: int
    resolution: float
    def __init__(self, algorithm: _Optional[_Union[ClusteringAlgorithm, str]] = ..., eps: _Optional[float] = ..., min_samples: _Optional[int] = ..., min_cluster_size: _Optional[int] = ..., n_clusters: _Optional[int] = ..., resolution: _Optional[float] = ...) -> None: ...

class ProjectionParams(_message.Message):
    __slots__ = ("method", "perplexity", "seed")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    method: ProjectionMethod
    perplexity: float
    seed: int
    def __init__(self, method: _Optional[_Union[ProjectionMethod, str]] = ..., perplexity: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ("purity", "nmi", "ari", "noise_fraction", "silhouette", "labelled_count", "largest_cluster_fraction", "group_purity", "group_nmi", "group_ari")
    PURITY_FIELD_NUMBER: _ClassVar[int]
    NMI_FIELD_NUMBER: _ClassVar[int]
    ARI_FIELD_NUMBER: _ClassVar[int]
    NOISE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SILHOUETTE_FIELD_NUMBER: _ClassVar[int]
    LABELLED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LARGEST_CLUSTER_FRACTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_PURITY_FIELD_NUMBER: _ClassVar[int]
    GROUP_NMI_FIELD_NUMBER: _ClassVar[int]
    GROUP_ARI_FIELD_NUMBER: _ClassVar[int]
    purity: float
    nmi: float
    ari: float
    noise_fraction: float
    silhouette: float
    labelled_count: int
    largest_cluster_fraction: float
    group_purity: float
    group_nmi: float
    group_ari: float
    def __init__(self, purity: _Optional[float] = ..., nmi: _Optional[float] = ..., ari: _Optional[float] = ..., noise_fraction: _Optional[float] = ..., silhouette: _Optional[float] = ..., labelled_count: _Optional[int] = ..., largest_cluster_fraction: _Optional[float] = ..., group_purity: _Optional[float] = ..., group_nmi: _Optional[float] = ..., group_ari: _Optional[float] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "kind", "model_id", "filter", "clustering", "projection", "sample_count", "cluster_count", "create_time", "seconds", "metrics", "job_id", "state", "error", "error_reason", "noise_count", "eps_used", "previous_run_id", "clustering_run_id", "stage_seconds", "group_count", "resolution_used", "group_stability")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CLUSTERING_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    NOISE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EPS_USED_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTERING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_USED_FIELD_NUMBER: _ClassVar[int]
    GROUP_STABILITY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    kind: RunKind
    model_id: str
    filter: _common_pb2.Filter
    clustering: ClusteringParams
    projection: ProjectionParams
    sample_count: int
    cluster_count: int
    create_time: _timestamp_pb2.Timestamp
    seconds: float
    metrics: Metrics
    job_id: str
    state: RunState
    error: str
    error_reason: str
    noise_count: int
    eps_used: float
    previous_run_id: str
    clustering_run_id: str
    stage_seconds: _containers.ScalarMap[str, float]
    group_count: int
    resolution_used: float
    group_stability: float
    def __init__(self, run_id: _Optional[str] = ..., kind: _Optional[_Union[RunKind, str]] = ..., model_id: _Optional[str] = ..., filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., clustering: _Optional[_Union[ClusteringParams, _Mapping]] = ..., projection: _Optional[_Union[ProjectionParams, _Mapping]] = ..., sample_count: _Optional[int] = ..., cluster_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seconds: _Optional[float] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., job_id: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., error: _Optional[str] = ..., error_reason: _Optional[str] = ..., noise_count: _Optional[int] = ..., eps_used: _Optional[float] = ..., previous_run_id: _Optional[str] = ..., clustering_run_id: _Optional[str] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., group_count: _Optional[int] = ..., resolution_used: _Optional[float] = ..., group_stability: _Optional[float] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("cluster_id", "name", "size", "representative_asset_ids", "top_terms", "top_term_scores", "renamed", "representative_sample_ids", "level", "parent_id", "child_count")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    TOP_TERMS_FIELD_NUMBER: _ClassVar[int]
    TOP_TERM_SCORES_FIELD_NUMBER: _ClassVar[int]
    RENAMED_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHILD_COUNT_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    name: str
    size: int
    representative_asset_ids: _containers.RepeatedScalarFieldContainer[str]
    top_terms: _containers.RepeatedScalarFieldContainer[str]
    top_term_scores: _containers.RepeatedScalarFieldContainer[float]
    renamed: bool
    representative_sample_ids: _containers.RepeatedScalarFieldContainer[str]
    level: ClusterLevel
    parent_id: str
    child_count: int
    def __init__(self, cluster_id: _Optional[str] = ..., name: _Optional[str] = ..., size: _Optional[int] = ..., representative_asset_ids: _Optional[_Iterable[str]] = ..., top_terms: _Optional[_Iterable[str]] = ..., top_term_scores: _Optional[_Iterable[float]] = ..., renamed: _Optional[bool] = ..., representative_sample_ids: _Optional[_Iterable[str]] = ..., level: _Optional[_Union[ClusterLevel, str]] = ..., parent_id: _Optional[str] = ..., child_count: _Optional[int] = ...) -> None: ...

class CreateClusteringRunRequest(_message.Message):
    __slots__ = ("filter", "params", "label_field", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    filter: _common_pb2.Filter
    params: ClusteringParams
    label_field: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., params: _Optional[_Union[ClusteringParams, _Mapping]] = ..., label_field: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateClusteringRunResponse(_message.Message):
    __slots__ = ("run", "job")
    RUN_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    run: Run
    job: _common_pb2.Job
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class CreateProjectionRunRequest(_message.Message):
    __slots__ = ("filter", "params", "clustering_run_id")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CLUSTERING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    filter: _common_pb2.Filter
    params: ProjectionParams
    clustering_run_id: str
    def __init__(self, filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., params: _Optional[_Union[ProjectionParams, _Mapping]] = ..., clustering_run_id: _Optional[str] = ...) -> None: ...

class CreateProjectionRunResponse(_message.Message):
    __slots__ = ("run", "job")
    RUN_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    run: Run
    job: _common_pb2.Job
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "kind")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    kind: RunKind
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., kind: _Optional[_Union[RunKind, str]] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetClustersRequest(_message.Message):
    __slots__ = ("run_id", "page_size", "page_token", "level", "parent_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    page_size: int
    page_token: str
    level: ClusterLevel
    parent_id: str
    def __init__(self, run_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., level: _Optional[_Union[ClusterLevel, str]] = ..., parent_id: _Optional[str] = ...) -> None: ...

class GetClustersResponse(_message.Message):
    __slots__ = ("clusters", "next_page_token")
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[Cluster]
    next_page_token: str
    def __init__(self, clusters: _Optional[_Iterable[_Union[Cluster, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RenameClusterRequest(_message.Message):
    __slots__ = ("run_id", "cluster_id", "name")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    cluster_id: str
    name: str
    def __init__(self, run_id: _Optional[str] = ..., cluster_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class RenameClusterResponse(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: Cluster
    def __init__(self, cluster: _Optional[_Union[Cluster, _Mapping]] = ...) -> None: ...

class GetProjectionRequest(_message.Message):
    __slots__ = ("run_id", "page_size")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    page_size: int
    def __init__(self, run_id: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ProjectedPoint(_message.Message):
    __slots__ = ("sample_id", "asset_id", "x", "y", "cluster_id")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    asset_id: str
    x: float
    y: float
    cluster_id: str
    def __init__(self, sample_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., cluster_id: _Optional[str] = ...) -> None: ...

class GetProjectionResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[ProjectedPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[ProjectedPoint, _Mapping]]] = ...) -> None: ...

class FindDuplicatesRequest(_message.Message):
    __slots__ = ("filter", "min_similarity", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MIN_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: _common_pb2.Filter
    min_similarity: float
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., min_similarity: _Optional[float] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class DuplicateGroup(_message.Message):
    __slots__ = ("asset_ids", "min_similarity")
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    MIN_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    asset_ids: _containers.RepeatedScalarFieldContainer[str]
    min_similarity: float
    def __init__(self, asset_ids: _Optional[_Iterable[str]] = ..., min_similarity: _Optional[float] = ...) -> None: ...

class FindDuplicatesResponse(_message.Message):
    __slots__ = ("groups", "next_page_token")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[DuplicateGroup]
    next_page_token: str
    def __init__(self, groups: _Optional[_Iterable[_Union[DuplicateGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListClusterMembersRequest(_message.Message):
    __slots__ = ("run_id", "cluster_id", "page_size", "page_token")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    cluster_id: str
    page_size: int
    page_token: str
    def __init__(self, run_id: _Optional[str] = ..., cluster_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ClusterMember(_message.Message):
    __slots__ = ("sample_id", "asset_id", "similarity", "cluster_id")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    asset_id: str
    similarity: float
    cluster_id: str
    def __init__(self, sample_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., similarity: _Optional[float] = ..., cluster_id: _Optional[str] = ...) -> None: ...

class ListClusterMembersResponse(_message.Message):
    __slots__ = ("members", "next_page_token", "total_size")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[ClusterMember]
    next_page_token: str
    total_size: int
    def __init__(self, members: _Optional[_Iterable[_Union[ClusterMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class MoveToClusterRequest(_message.Message):
    __slots__ = ("run_id", "asset_ids", "cluster_id", "new_cluster_name")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_CLUSTER_NAME_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    asset_ids: _containers.RepeatedScalarFieldContainer[str]
    cluster_id: str
    new_cluster_name: str
    def __init__(self, run_id: _Optional[str] = ..., asset_ids: _Optional[_Iterable[str]] = ..., cluster_id: _Optional[str] = ..., new_cluster_name: _Optional[str] = ...) -> None: ...

class MovedAsset(_message.Message):
    __slots__ = ("asset_id", "previous_cluster_id")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    previous_cluster_id: str
    def __init__(self, asset_id: _Optional[str] = ..., previous_cluster_id: _Optional[str] = ...) -> None: ...

class MoveToClusterResponse(_message.Message):
    __slots__ = ("cluster", "moves", "skipped_asset_ids")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    cluster: Cluster
    moves: _containers.RepeatedCompositeFieldContainer[MovedAsset]
    skipped_asset_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cluster: _Optional[_Union[Cluster, _Mapping]] = ..., moves: _Optional[_Iterable[_Union[MovedAsset, _Mapping]]] = ..., skipped_asset_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CompareRunsRequest(_message.Message):
    __slots__ = ("run_id_a", "run_id_b", "level", "max_cells")
    RUN_ID_A_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_B_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MAX_CELLS_FIELD_NUMBER: _ClassVar[int]
    run_id_a: str
    run_id_b: str
    level: ClusterLevel
    max_cells: int
    def __init__(self, run_id_a: _Optional[str] = ..., run_id_b: _Optional[str] = ..., level: _Optional[_Union[ClusterLevel, str]] = ..., max_cells: _Optional[int] = ...) -> None: ...

class ComparedCluster(_message.Message):
    __slots__ = ("cluster_id", "name", "size")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    name: str
    size: int
    def __init__(self, cluster_id: _Optional[str] = ..., name: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class ContingencyCell(_message.Message):
    __slots__ = ("a_index", "b_index", "count")
    A_INDEX_FIELD_NUMBER: _ClassVar[int]
    B_INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    a_index: int
    b_index: int
    count: int
    def __init__(self, a_index: _Optional[int] = ..., b_index: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class ClusterMove(_message.Message):
    __slots__ = ("a_index", "b_index", "count", "example_asset_ids")
    A_INDEX_FIELD_NUMBER: _ClassVar[int]
    B_INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    a_index: int
    b_index: int
    count: int
    example_asset_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, a_index: _Optional[int] = ..., b_index: _Optional[int] = ..., count: _Optional[int] = ..., example_asset_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CompareRunsResponse(_message.Message):
    __slots__ = ("common_samples", "ari", "nmi", "clusters_a", "clusters_b", "cells", "cells_truncated", "moves", "stayed", "moved")
    COMMON_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ARI_FIELD_NUMBER: _ClassVar[int]
    NMI_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_A_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_B_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    CELLS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    STAYED_FIELD_NUMBER: _ClassVar[int]
    MOVED_FIELD_NUMBER: _ClassVar[int]
    common_samples: int
    ari: float
    nmi: float
    clusters_a: _containers.RepeatedCompositeFieldContainer[ComparedCluster]
    clusters_b: _containers.RepeatedCompositeFieldContainer[ComparedCluster]
    cells: _containers.RepeatedCompositeFieldContainer[ContingencyCell]
    cells_truncated: bool
    moves: _containers.RepeatedCompositeFieldContainer[ClusterMove]
    stayed: int
    moved: int
    def __init__(self, common_samples: _Optional[int] = ..., ari: _Optional[float] = ..., nmi: _Optional[float] = ..., clusters_a: _Optional[_Iterable[_Union[ComparedCluster, _Mapping]]] = ..., clusters_b: _Optional[_Iterable[_Union[ComparedCluster, _Mapping]]] = ..., cells: _Optional[_Iterable[_Union[ContingencyCell, _Mapping]]] = ..., cells_truncated: _Optional[bool] = ..., moves: _Optional[_Iterable[_Union[ClusterMove, _Mapping]]] = ..., stayed: _Optional[int] = ..., moved: _Optional[int] = ...) -> None: ...
