"""Domain errors. Each carries a machine-readable ``reason``; ``ordo.grpc.status`` maps the class
to one canonical gRPC code in one place, so servicers never choose codes ad hoc."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Every machine-readable error reason Ordo gives, in one place.

    Why an enum: reasons are part of the contract (gRPC ``ErrorInfo.reason``, REST ``error.reason``, job
    failures), and free strings drifted (one condition had two spellings). A ``StrEnum`` member *is* its
    string, so wire values, stored job failures and clients that compare strings are unchanged.
    """

    ASSET_NOT_FOUND = "ASSET_NOT_FOUND"
    AUTH_REQUIRED_FOR_BIND = "AUTH_REQUIRED_FOR_BIND"
    BAD_ALGORITHM = "BAD_ALGORITHM"
    BAD_ARGUMENT = "BAD_ARGUMENT"
    BAD_ASSET_ID = "BAD_ASSET_ID"
    BAD_CLUSTER_ID = "BAD_CLUSTER_ID"
    BAD_COLLECTION = "BAD_COLLECTION"
    BAD_CONFIG = "BAD_CONFIG"
    BAD_DIM = "BAD_DIM"
    BAD_ENUM = "BAD_ENUM"
    BAD_EPS = "BAD_EPS"
    BAD_EXPIRY = "BAD_EXPIRY"
    BAD_FILTER = "BAD_FILTER"
    BAD_HOLDOUT = "BAD_HOLDOUT"
    BAD_LIBRARY = "BAD_LIBRARY"
    BAD_LIMIT = "BAD_LIMIT"
    BAD_MAX_CELLS = "BAD_MAX_CELLS"
    BAD_METHOD = "BAD_METHOD"
    BAD_MIN_CLUSTER_SIZE = "BAD_MIN_CLUSTER_SIZE"
    BAD_MIN_SIMILARITY = "BAD_MIN_SIMILARITY"
    BAD_MULTIPART = "BAD_MULTIPART"
    BAD_OBJECT_KEY = "BAD_OBJECT_KEY"
    BAD_OBJECT_PREFIX = "BAD_OBJECT_PREFIX"
    BAD_ORDER_BY = "BAD_ORDER_BY"
    BAD_PAGE_SIZE = "BAD_PAGE_SIZE"
    BAD_PAGE_TOKEN = "BAD_PAGE_TOKEN"
    BAD_PARAMETER = "BAD_PARAMETER"
    BAD_PARENT = "BAD_PARENT"
    BAD_PAYLOAD = "BAD_PAYLOAD"
    BAD_PERPLEXITY = "BAD_PERPLEXITY"
    BAD_POINT_ID = "BAD_POINT_ID"
    BAD_RESOLUTION = "BAD_RESOLUTION"
    BAD_ROLE = "BAD_ROLE"
    BAD_RUN_ID = "BAD_RUN_ID"
    BAD_RUN_KIND = "BAD_RUN_KIND"
    BAD_S3_BUCKET = "BAD_S3_BUCKET"
    BAD_S3_ENDPOINT = "BAD_S3_ENDPOINT"
    BAD_S3_URL = "BAD_S3_URL"
    BAD_SEARCH = "BAD_SEARCH"
    BAD_SEARCH_MODE = "BAD_SEARCH_MODE"
    BAD_SWAP_MAP = "BAD_SWAP_MAP"
    BAD_TEMPLATE = "BAD_TEMPLATE"
    BAD_TLS_CONFIG = "BAD_TLS_CONFIG"
    BAD_UNFREEZE = "BAD_UNFREEZE"
    BAD_URI = "BAD_URI"
    BUCKET_NOT_ALLOWED = "BUCKET_NOT_ALLOWED"
    CHUNK_BEFORE_HEADER = "CHUNK_BEFORE_HEADER"
    CLUSTER_NOT_FOUND = "CLUSTER_NOT_FOUND"
    CORRUPT = "CORRUPT"
    CSRF_TOKEN = "CSRF_TOKEN"
    DATASET_INDEX_BAD = "DATASET_INDEX_BAD"
    DATASET_INDEX_MISSING = "DATASET_INDEX_MISSING"
    DECOMPRESSION_BOMB = "DECOMPRESSION_BOMB"
    DETECTOR_UNAVAILABLE = "DETECTOR_UNAVAILABLE"
    EMPTY_COLLECTION = "EMPTY_COLLECTION"
    EMPTY_CONTENT = "EMPTY_CONTENT"
    EMPTY_DATASET = "EMPTY_DATASET"
    EMPTY_FILE = "EMPTY_FILE"
    EMPTY_NAME = "EMPTY_NAME"
    EMPTY_QUERY = "EMPTY_QUERY"
    EMPTY_TEXT = "EMPTY_TEXT"
    EMPTY_UPLOAD = "EMPTY_UPLOAD"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    FIELD_TOO_LONG = "FIELD_TOO_LONG"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    GROUP_NOT_FOUND = "GROUP_NOT_FOUND"
    HIDDEN = "HIDDEN"
    IMAGES_NOT_INDEXED = "IMAGES_NOT_INDEXED"
    INDEX_HOST_TOKEN_REQUIRED = "INDEX_HOST_TOKEN_REQUIRED"
    INDEX_HOST_UNAUTHENTICATED = "INDEX_HOST_UNAUTHENTICATED"
    INTERNAL = "INTERNAL"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INVALID_VECTORS = "INVALID_VECTORS"
    JOB_FINISHED = "JOB_FINISHED"
    JOB_STILL_QUEUED = "JOB_STILL_QUEUED"
    KEY_ESCALATION = "KEY_ESCALATION"
    KEY_EXPIRED = "KEY_EXPIRED"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    KEY_REVOKED = "KEY_REVOKED"
    LIBRARY_DENIED = "LIBRARY_DENIED"
    LIBRARY_READ_ONLY = "LIBRARY_READ_ONLY"
    MALFORMED_KEY = "MALFORMED_KEY"
    MISSING_ASSET_ID = "MISSING_ASSET_ID"
    MISSING_CLUSTER_ID = "MISSING_CLUSTER_ID"
    MISSING_FILE_NAME = "MISSING_FILE_NAME"
    MISSING_JOB_ID = "MISSING_JOB_ID"  # was also JOB_ID_REQUIRED in one place: one condition, one reason
    MISSING_KEY = "MISSING_KEY"
    MISSING_N_CLUSTERS = "MISSING_N_CLUSTERS"
    MISSING_QUERY = "MISSING_QUERY"
    MISSING_RUN_ID = "MISSING_RUN_ID"
    MODEL_ALREADY_ACTIVE = "MODEL_ALREADY_ACTIVE"
    MODEL_PATH_NOT_ALLOWED = "MODEL_PATH_NOT_ALLOWED"
    MODEL_REQUIRED = "MODEL_REQUIRED"
    MODEL_SWITCH_IN_PROGRESS = "MODEL_SWITCH_IN_PROGRESS"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    NAME_TOO_LONG = "NAME_TOO_LONG"
    NOT_AN_IMAGE = "NOT_AN_IMAGE"
    NOT_A_FILE = "NOT_A_FILE"
    NOT_FINITE = "NOT_FINITE"
    NOT_FOUND = "NOT_FOUND"
    NOT_MULTIPART = "NOT_MULTIPART"
    NO_COLLECTION = "NO_COLLECTION"
    NO_GROUPS = "NO_GROUPS"
    NO_MATCHING_SAMPLES = "NO_MATCHING_SAMPLES"
    NO_POLICY = "NO_POLICY"
    NO_SESSION = "NO_SESSION"
    NO_SPLIT = "NO_SPLIT"
    NO_TEMPLATES = "NO_TEMPLATES"
    NO_TEXTS = "NO_TEXTS"
    NO_URIS = "NO_URIS"
    OBJECT_KEY_CONFLICT = "OBJECT_KEY_CONFLICT"
    OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
    OCR_UNAVAILABLE = "OCR_UNAVAILABLE"
    ORDER_INDEX_BUILDING = "ORDER_INDEX_BUILDING"
    PATHS_NEED_ADMIN = "PATHS_NEED_ADMIN"
    PATH_OUTSIDE_ROOTS = "PATH_OUTSIDE_ROOTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    PORT_IN_USE = "PORT_IN_USE"
    QUERY_TOO_LONG = "QUERY_TOO_LONG"
    QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"
    ROLE_TOO_LOW = "ROLE_TOO_LOW"
    RUN_FAILED = "RUN_FAILED"
    RUN_NOT_FOUND = "RUN_NOT_FOUND"
    RUN_NOT_READY = "RUN_NOT_READY"
    S3_AUTH = "S3_AUTH"
    S3_BAD_RESPONSE = "S3_BAD_RESPONSE"
    S3_ERROR = "S3_ERROR"
    S3_INVALID_REQUEST = "S3_INVALID_REQUEST"
    S3_NOT_CONFIGURED = "S3_NOT_CONFIGURED"
    S3_NO_BUCKET = "S3_NO_BUCKET"
    S3_SERVER_ERROR = "S3_SERVER_ERROR"
    S3_UNREACHABLE = "S3_UNREACHABLE"
    SIZE_MISMATCH = "SIZE_MISMATCH"
    STORAGE_IO = "STORAGE_IO"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    THUMBNAIL_NOT_READY = "THUMBNAIL_NOT_READY"
    TOO_FEW_CLASSES = "TOO_FEW_CLASSES"
    TOO_FEW_SAMPLES = "TOO_FEW_SAMPLES"
    TOO_LARGE = "TOO_LARGE"
    TOO_MANY = "TOO_MANY"
    TOO_MANY_ASSETS = "TOO_MANY_ASSETS"
    TOO_MANY_ITEMS = "TOO_MANY_ITEMS"
    TOO_MANY_LIBRARIES = "TOO_MANY_LIBRARIES"
    TOO_MANY_TEXTS = "TOO_MANY_TEXTS"
    TRUNCATED = "TRUNCATED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAVAILABLE = "UNAVAILABLE"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    UNREADABLE = "UNREADABLE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    UPLOAD_IDLE_TIMEOUT = "UPLOAD_IDLE_TIMEOUT"
    VECTOR_INDEX_AUTH = "VECTOR_INDEX_AUTH"
    VECTOR_INDEX_IN_USE = "VECTOR_INDEX_IN_USE"
    VECTOR_INDEX_UNAVAILABLE = "VECTOR_INDEX_UNAVAILABLE"
    VECTOR_SIZE_MISMATCH = "VECTOR_SIZE_MISMATCH"
    ZIP_TOO_LARGE = "ZIP_TOO_LARGE"


class OrdoError(Exception):
    """Base class; ``reason`` is a stable UPPER_SNAKE identifier clients may branch on."""

    reason: str = Reason.INTERNAL

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class InvalidInput(OrdoError):
    """The caller sent something unusable (a bad argument, a file that is not an image...)."""

    reason: str = Reason.INVALID_ARGUMENT


class NotFound(OrdoError):
    reason: str = Reason.NOT_FOUND


class TooLarge(OrdoError):
    """An input exceeds a configured limit (bytes or pixels)."""

    reason: str = Reason.TOO_LARGE


class Unavailable(OrdoError):
    """A dependency (object store, vector index, queue, model) cannot be reached right now; retryable."""

    reason: str = Reason.UNAVAILABLE


class ModelUnavailable(OrdoError):
    """The configured model's weights cannot be had; the message says what to do."""

    reason: str = Reason.MODEL_UNAVAILABLE


class Conflict(OrdoError):
    """The operation contradicts the current state (e.g. a vector size that does not match the collection)."""

    reason: str = Reason.FAILED_PRECONDITION


class Unauthenticated(OrdoError):
    """No credential, or one that is unknown, revoked or expired (gRPC UNAUTHENTICATED, HTTP 401)."""

    reason: str = Reason.UNAUTHENTICATED


class PermissionDenied(OrdoError):
    """A valid credential without the rights this call needs (gRPC PERMISSION_DENIED, HTTP 403)."""

    reason: str = Reason.PERMISSION_DENIED
