"""`ORDO_MODEL=auto`: pick CLIP when it can be had, otherwise the bundled offline model.

Users behind firewalls cannot download CLIP, and a service that refuses to start there is worse than one
that starts with a weaker model and says so. The choice is made once, cheaply (a cache lookup and, when
not cached, one short request to the hub), logged, and reported by `ordo status`; the model that is then
recorded as active (see ``ordo.core.model_versions``) is what later starts serve, so a collection never
silently changes model because the network came back.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ordo.config import Settings

log = logging.getLogger(__name__)

AUTO = "auto"
# Files whose presence in the local Hugging Face cache means the model loads offline.
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HUB_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ModelChoice:
    """The model to load and, in words, why it was chosen (for logs and `ordo status`)."""

    model: str
    reason: str


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def is_cached(model: str, cache_dir: str | None = None) -> bool:
    """True when ``model`` loads without the network: a local directory, a bundled family
    (``ordo-lite``, ``random-clip:``), or a hub id whose config and weights are in the local cache."""
    from ordo.embedding.factory import registered_families

    if any(model.startswith(prefix) for prefix in registered_families()):
        return True
    if Path(model).expanduser().is_dir():
        return (Path(model).expanduser() / "config.json").is_file()
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(model, name, cache_dir=cache_dir), str)

    try:
        return cached("config.json") and any(cached(name) for name in _WEIGHT_FILES)
    except ValueError:  # not a valid repo id
        return False


def hub_reachable(model: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """One metadata request to the hub; (False, why) when offline, unreachable or unknown."""
    if _offline():
        return False, "HF_HUB_OFFLINE is set"
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(model, timeout=timeout)
    except Exception as exc:  # DNS failure, timeout, 401, 404: all mean "cannot download it now"
        return False, f"the model hub cannot be reached ({type(exc).__name__})"
    return True, "downloadable from the model hub"


def resolve_model(settings: Settings) -> ModelChoice:
    """What ``settings.model`` means now. Anything but ``auto`` is taken as configured."""
    if settings.model.strip() != AUTO:
        return ModelChoice(settings.model.strip(), "configured (ORDO_MODEL)")
    preferred = settings.auto_model
    cache_dir = settings.model_cache_dir or None
    if is_cached(preferred, cache_dir):
        return ModelChoice(preferred, f"ORDO_MODEL=auto: {preferred} is in the local cache")
    reachable, why = hub_reachable(preferred)
    if reachable:
        return ModelChoice(preferred, f"ORDO_MODEL=auto: {preferred} is {why}")
    fallback = settings.auto_fallback_model
    return ModelChoice(
        fallback,
        f"ORDO_MODEL=auto: {preferred} is not cached and {why}; using {fallback}, the bundled offline model",
    )
