"""`ORDO_MODEL=auto`: CLIP when its weights are cached or downloadable, otherwise the bundled offline
model — decided cheaply, said in words, and recorded so later starts serve the same model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordo.app import AppContext
from ordo.config import Settings, collection_for
from ordo.embedding.model_selection import is_cached, resolve_model


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_default_is_auto_with_ordo_lite_as_the_offline_fallback() -> None:
    settings = Settings()
    assert settings.model == "auto"
    assert settings.auto_fallback_model == "ordo-lite"


def test_an_explicit_model_is_taken_as_configured() -> None:
    choice = resolve_model(Settings(model="random-clip:tiny"))
    assert (choice.model, choice.reason) == ("random-clip:tiny", "configured (ORDO_MODEL)")


def test_auto_prefers_a_cached_model(tiny_clip_dir: Path, offline: None) -> None:
    choice = resolve_model(Settings(model="auto", auto_model=str(tiny_clip_dir)))
    assert choice.model == str(tiny_clip_dir)
    assert "local cache" in choice.reason


def test_auto_falls_back_when_clip_is_neither_cached_nor_reachable(tmp_path: Path, offline: None) -> None:
    settings = Settings(model="auto", model_cache_dir=str(tmp_path / "empty-hf-cache"))
    assert not is_cached(settings.auto_model, settings.model_cache_dir)
    choice = resolve_model(settings)
    assert choice.model == "ordo-lite"
    assert settings.auto_model in choice.reason and "HF_HUB_OFFLINE" in choice.reason


def test_unreachable_hub_is_detected_without_the_offline_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no model hub: the probe must fail fast and fall back, not hang or crash."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    choice = resolve_model(Settings(model="auto", model_cache_dir=str(tmp_path / "cache")))
    assert choice.model == "ordo-lite" and "cannot be reached" in choice.reason


def test_collections_are_per_model(tiny_clip_dir: Path) -> None:
    assert collection_for("ordo-lite") == "images-ordo-lite"
    assert collection_for(str(tiny_clip_dir)) == collection_for(tiny_clip_dir.name)  # a folder: its name
    assert collection_for("openai/clip-vit-base-patch32") != collection_for("ordo-lite")


def test_context_records_the_resolved_model_and_falls_back_when_loading_fails(tmp_path: Path, offline: None) -> None:
    """A model that looks available but cannot load (a broken download) must not keep Ordo down."""
    broken = tmp_path / "broken-clip"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    settings = Settings(
        data_dir=tmp_path / "data", model="auto", auto_model=str(broken), auto_fallback_model="random-clip:tiny"
    )
    ctx = AppContext(settings)
    try:
        version = ctx.active_version()
        assert version.model == "random-clip:tiny"
        assert version.collection == collection_for("random-clip:tiny")
        assert "failed to load" in version.reason
        assert ctx.load_embedder().model_id == version.model_id
    finally:
        ctx.close()
    # Recorded: a later start serves the same model without resolving again.
    again = AppContext(settings.model_copy(update={"auto_model": "openai/clip-vit-base-patch32"}))
    try:
        assert again.active_version().model == "random-clip:tiny"
    finally:
        again.close()


def test_an_ingest_only_process_does_not_load_the_model_for_stats(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """`ordo serve ingest` never embeds: answering GetStats must not load the active model."""
    import shutil

    from ordo.client import OrdoClient
    from ordo.grpc_api.server import OrdoServer
    from ordo.v1 import ingest_pb2

    model = tmp_path / "never-loaded-clip"
    shutil.copytree(tiny_clip_dir, model)
    ctx = AppContext(Settings(data_dir=tmp_path / "data", model=str(model)))
    ctx.model_versions.ensure_active(str(model), "never-loaded", collection_for(str(model)), "test")
    server = OrdoServer(ctx, ("ingest",), "127.0.0.1", 0).start()
    try:
        client = OrdoClient(ctx.settings.model_copy(update={"address": f"127.0.0.1:{server.port}"}))
        stats = client.ingest.GetStats(ingest_pb2.GetStatsRequest())
        assert (stats.model, stats.model_id, stats.device) == (str(model), "never-loaded", "")
        assert not ctx.embedder_for(str(model), load=False).is_loaded
    finally:
        server.stop()
        ctx.close()
