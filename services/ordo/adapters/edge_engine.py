"""The seams of the ``qdrant_edge`` binding that ``EdgeVectorIndex`` is built on.

Kept apart from the index itself because they describe the *binding*, not the index's behaviour:
the binding's model classes plugged into the filter logic both Qdrant adapters share
(``ordo.adapters.qdrant_filters``), how its bare ``Exception``\\ s (told apart only by their messages)
map to Ordo errors, and how to tell a folder that already holds a shard.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from ordo.errors import Conflict, OrdoError, Reason, Unavailable

#: The other index types, kept in RAM (the engine's default) or mapped (their params with a ``Memory``).
_IN_RAM_SCHEMAS = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "datetime": qe.PayloadSchemaType.Datetime,
    "bool": qe.PayloadSchemaType.Bool,
    "uuid": qe.PayloadSchemaType.Uuid,
}
_MAPPED_SCHEMAS: dict[str, Callable[[Any], Any]] = {
    "keyword": lambda memory: qe.KeywordIndexParams(memory=memory),
    "integer": lambda memory: qe.IntegerIndexParams(lookup=True, range=True, memory=memory),
    "float": lambda memory: qe.FloatIndexParams(memory=memory),
    "datetime": lambda memory: qe.DatetimeIndexParams(memory=memory),
    "bool": lambda memory: qe.BoolIndexParams(memory=memory),
    "uuid": lambda memory: qe.UuidIndexParams(memory=memory),
}


class EdgeModels:
    """``QdrantModels`` for the ``qdrant_edge`` classes (see ``ordo.adapters.qdrant_filters``).

    Conditions are typed as the binding's ``ConditionType`` (the union its ``Filter`` takes), so one
    list can hold field and id conditions alike."""

    def match_value(self, key: str, value: str) -> qe.ConditionType:
        return qe.FieldCondition(key, match=qe.MatchValue(value))

    def match_any(self, key: str, values: list[str]) -> qe.ConditionType:
        return qe.FieldCondition(key, match=qe.MatchAny(values))

    def match_prefix(self, key: str, prefix: str) -> qe.ConditionType:
        return qe.FieldCondition(key, match=qe.MatchPrefix(prefix))

    def has_id(self, ids: list[str]) -> qe.ConditionType:
        return qe.HasIdCondition(set(ids))  # the binding wants a set

    def match_text_any(self, key: str, words: str) -> qe.ConditionType:
        return qe.FieldCondition(key, match=qe.MatchTextAny(words))

    def int_at_least(self, key: str, minimum: int) -> qe.ConditionType:
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=float(minimum)))

    def datetime_range(self, key: str, gte: str | None, lt: str | None) -> qe.ConditionType:
        return qe.FieldCondition(key, range=qe.RangeDateTime(gte=gte, lt=lt))

    def filter(self, must: list[qe.ConditionType], must_not: list[qe.ConditionType]) -> qe.Filter:
        return qe.Filter(must=must or None, must_not=must_not or None)

    def index_schema(self, index_type: str, *, prefix: bool = False, mapped: bool = False) -> Any:
        """``mapped``: the index stays in its files (``Memory.Cold``, paged in as filters touch it) instead
        of being rebuilt in RAM whenever the shard is loaded (see ``MAPPED_INDEXES``)."""
        memory = qe.Memory.Cold if mapped else None
        if index_type == "keyword" and prefix:
            return qe.KeywordIndexParams(prefix=True, memory=memory)
        if index_type == "text":
            return qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, memory=memory)
        if not mapped:
            return _IN_RAM_SCHEMAS[index_type]
        return _MAPPED_SCHEMAS[index_type](memory)

    def search_params(self, hnsw_ef: int, acorn: bool) -> qe.SearchParams:
        # Scalar-quantized segments (see ``QUANTIZATION``) are walked on their int8 copy and the best
        # ``OVERSAMPLING`` x limit rescored on the float vectors, so scores stay exact cosines. Segments
        # without a quantized copy (plain ones, shards from before it) ignore this.
        return qe.SearchParams(
            hnsw_ef=hnsw_ef,
            acorn=qe.AcornSearchParams(enable=True) if acorn else None,
            quantization=qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING),
        )


#: The shard's vectors get an int8 copy in RAM (Qdrant's scalar quantization, 0.99 quantile) that graph
#: walks compare against. ``python -m bench.edge_search_cost`` (100k x 256, top 11 with payloads, ef 128): a
#: search took 0.22 ms of CPU against 0.40 unquantized on one thread and 0.64 with the engine's default search
#: threads, recall@10 1.000 in all three; on 10,793 real ordo-lite image vectors with 400 flickr8k captions as
#: queries, recall@10 0.999 as unquantized (oversampling 1.0: 0.978). A search is held under the GIL (the
#: binding never releases it), so its CPU is what concurrent searches wait for. Costs 1 byte a dimension.
QUANTIZATION = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
OVERSAMPLING = 2.0
#: The float vectors stay in their files (``Memory.Cold``: mapped, read through the page cache) rather than being
#: brought into RAM when the shard loads: graph walks use the int8 copy (in RAM), and only the ``OVERSAMPLING``
#: x limit candidates of a search are read back to rescore. The load after a rebuild holds the GIL, and bringing
#: the vectors in was part of it: ``bench.edge_index_load``'s 100k x 256 shard loaded in 0.24 s against 0.28 s,
#: with the same search CPU (1.09-1.11 ms no filter, 0.63 ms ``kind``). It also leaves dim x 4 bytes a vector to
#: the page cache instead of the process (2 GB at 1M x 512). A shard made before keeps its vectors in RAM until
#: its next rebuild.
VECTOR_MEMORY = qe.Memory.Cold
#: One search thread: the engine's pool searched the two segments side by side, but the handoff cost more CPU
#: than it saved wall time (0.64 ms CPU / 0.49 ms wall against 0.40 / 0.40 on one thread, same bench), and the
#: caller holds the GIL meanwhile, so in a serving process CPU per search is the scarce thing.
SEARCH_THREADS = 1


MODELS = EdgeModels()

#: Payload indexes that stay in their files (mmap, paged in as used) instead of being rebuilt in RAM at every
#: shard load. The load after a rebuild holds the GIL (the binding never releases it), so it stalls every thread
#: of ``ordo up`` once per rebuild. ``python -m bench.edge_index_load`` (100k x 256, 2-core Xeon, vectors in RAM; the
#: alternatives measured with the same shards): every index in RAM, a load took 0.83-0.88 s; these five
#: mapped, 0.34 s; the dates mapped too, 0.28 s, but a date-range search then cost 7.1-7.5 ms of CPU against
#: 5.3-5.6 in RAM, so dates stay in RAM. A ``min_height`` search costs the same either way (1.0-1.2 ms). The
#: few-valued fields whole-library reads filter on (kind, library, model, type, cluster) cost little to load
#: and stay in RAM: mapped, a ``kind`` filter cost ~0.2 ms more a search, paid under the GIL.
MAPPED_INDEXES = frozenset({"asset_id", "source_uri", "text", "width", "height"})


def config_is_current(path: Path) -> bool:
    """Whether the shard in ``path`` was made with today's search settings (``QUANTIZATION``, ``SEARCH_THREADS``).

    A shard made before them answers correctly but spends more CPU a search; ``EdgeVectorIndex.upgrade``
    rebuilds it. An unreadable config counts as current: nothing to judge, so nothing is started."""
    try:
        config = json.loads((path / "edge_config.json").read_text())
    except (OSError, ValueError):
        return True
    return bool(config.get("quantization_config")) and config.get("max_search_threads") == SEARCH_THREADS


def has_shard(path: Path) -> bool:
    """Whether ``path`` already holds a shard (``EdgeShard.create`` refuses such a folder)."""
    return (path / "edge_config.json").exists() or any((path / "segments").glob("*"))


def in_use_message(path: Path) -> str:
    return (
        f"embedded vector index at {path} is in use by another process; run all services in one "
        "process (`ordo up`) or use a Qdrant server (ORDO_QDRANT_URL)"
    )


@contextmanager
def engine_errors(path: Path, action: str) -> Iterator[None]:
    """Map the binding's bare ``Exception``\\ s (told apart only by message) to ordo errors; ``path``
    is the index's, for the messages, ``action`` what was being done."""
    try:
        yield
    except OrdoError:
        raise
    except Exception as exc:
        message = str(exc)
        if "WouldBlock" in message or "Can't init WAL" in message:
            raise Unavailable(in_use_message(path), reason=Reason.VECTOR_INDEX_IN_USE) from exc
        if "Vector dimension error" in message:
            raise Conflict(
                f"vector size does not fit the index at {path}: {message}",
                reason=Reason.VECTOR_SIZE_MISMATCH,
            ) from exc
        if "not initialized" in message:
            raise Unavailable(f"embedded vector index at {path} is closed") from exc
        if isinstance(exc, OSError):
            raise Unavailable(f"embedded vector index at {path}: {action} failed: {exc}") from exc
        raise
