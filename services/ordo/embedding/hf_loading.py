"""Finding and loading a transformers dual encoder: a local directory, the Hugging Face cache, or the Hub.

Loading fails fast and once: when the weights cannot be had we raise a single
:class:`ordo.errors.ModelUnavailable` that says what to do, instead of letting ``huggingface_hub`` retry an
unreachable Hub for ~25 s. We load the three parts with ``AutoModel``, ``AutoImageProcessor`` and
``AutoTokenizer`` rather than ``AutoProcessor``, because many third-party dual encoder repositories ship the
two preprocessors without a ``processor_config.json`` binding them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ordo.errors import ModelUnavailable

logger = logging.getLogger(__name__)

# One HEAD request decides whether going online is worth it; never longer than this.
_HUB_PROBE_TIMEOUT_S = 3.0
# ``hf download org/name`` keeps snapshots at .../models--org--name/snapshots/<revision>.
_HF_CACHE_SNAPSHOT = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][^/\\]+$")
_GUIDANCE_TAIL = (
    "Download it once on a connected machine (`hf download {name}`) and copy the cache (HF_HOME), "
    "or point ORDO_MODEL at a local directory holding the model. (Ordo's bundled offline model arrives "
    "separately.)"
)


def _looks_like_path(name: str) -> bool:
    """A name the user meant as a directory: absolute, explicitly relative, home-relative or Windows-style.

    ``org/name`` is *not* a path (it is a Hub id), even though it contains a slash.
    """
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or "\\" in name
        or bool(re.match(r"^[A-Za-z]:[/\\]", name))
    )


def _hub_reachable(timeout_s: float = _HUB_PROBE_TIMEOUT_S) -> bool:
    """One HEAD request to the configured Hub endpoint, without ``huggingface_hub``'s retry loop.

    Uses the Hub library's own HTTP session so ``HF_ENDPOINT`` and proxy settings are honoured. Any HTTP
    answer (even an error status) means the network path works; only a transport failure means offline.
    """
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import get_session

        get_session().head(constants.ENDPOINT, timeout=timeout_s)
    except Exception as exc:  # any transport or library error means "do not try online"
        logger.debug("Hugging Face Hub not reachable: %r", exc)
        return False
    return True


def _hub_offline_forced() -> bool:
    """True when the environment forbids Hub access (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    try:
        from huggingface_hub import constants

        return bool(constants.is_offline_mode())
    except Exception:
        return False


def _hf_cache_location(cache_dir: str | None) -> str:
    if cache_dir:
        return cache_dir
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:
        return "the Hugging Face cache"


def model_id_for_directory(path: Path) -> str:
    """A stable, human-readable id for a model loaded from a directory.

    A snapshot inside a Hugging Face cache maps back to its repository id (``org/name``), so copying a
    cache and pointing ORDO_MODEL at the snapshot gives the same id as loading by name. Any other directory
    is named by its basename. We deliberately ignore ``_name_or_path`` in ``config.json``: fine-tunes saved
    from ``openai/clip-...`` carry the *base* model's name there, and sharing an id with the base model would
    mix incompatible vectors in one index.
    """
    resolved = path.expanduser().resolve()
    match = _HF_CACHE_SNAPSHOT.search(str(resolved))
    if match:
        return f"{match['org']}/{match['name']}"
    return resolved.name or str(resolved)


def load_pretrained(
    model_name: str, *, cache_dir: str | None, local_files_only: bool | None, dtype: Any
) -> tuple[Any, Any, Any]:
    """``(model, image_processor, tokenizer)`` for a directory or a Hub id: the local cache first, the Hub
    only when ``local_files_only`` allows it and the Hub answers (see :class:`HFDualEncoder` for the flag)."""
    local_dir = Path(model_name).expanduser()
    if local_dir.is_dir():  # checked again here: the directory may have been mounted after __init__
        try:
            return _from_pretrained(str(local_dir), cache_dir=cache_dir, local_files_only=True, dtype=dtype)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailable(
                f"Could not load model from directory {str(local_dir)!r}: {exc}. The directory "
                "must hold a transformers dual encoder saved with save_pretrained (config.json, the "
                "weights, preprocessor_config.json and the tokenizer files)."
            ) from exc
    name = model_name
    if _looks_like_path(name):
        raise ModelUnavailable(
            f"Could not load model {name!r}: no such directory. Point ORDO_MODEL at a directory holding "
            "a transformers dual encoder (saved with save_pretrained or `hf download --local-dir`), or "
            "at a Hugging Face model id such as 'openai/clip-vit-base-patch32'."
        )
    cache_error: Exception | None = None
    if local_files_only is not False:
        try:
            return _from_pretrained(name, cache_dir=cache_dir, local_files_only=True, dtype=dtype)
        except OSError as exc:  # not (completely) in the cache
            cache_error = exc
        except (ValueError, KeyError) as exc:
            raise _unusable(name, exc) from exc
        logger.debug("Model %s not in the local cache: %s", name, cache_error)
    _require_hub(name, cache_dir, local_files_only, cache_error)
    try:
        logger.info("Model %s not in the local cache; downloading it from the Hugging Face Hub", name)
        return _from_pretrained(name, cache_dir=cache_dir, local_files_only=False, dtype=dtype)
    except OSError as exc:  # repository not found, gated, network dropped mid-download...
        raise ModelUnavailable(
            f"Could not load model {name!r} from the Hugging Face Hub: {exc}. Check the model id (and "
            f"HF_TOKEN for gated models). {_GUIDANCE_TAIL.format(name=name)}"
        ) from exc
    except (ValueError, KeyError) as exc:
        raise _unusable(name, exc) from exc


def _require_hub(
    name: str, cache_dir: str | None, local_files_only: bool | None, cache_error: Exception | None
) -> None:
    """Raise the guidance error unless going to the Hub is allowed and the Hub answers."""
    cache = _hf_cache_location(cache_dir)
    tail = _GUIDANCE_TAIL.format(name=name)
    if local_files_only is True or _hub_offline_forced():
        why = "local_files_only=True" if local_files_only is True else "HF_HUB_OFFLINE is set"
        raise ModelUnavailable(
            f"Could not load model {name!r}: it is not in the local Hugging Face cache ({cache}) and Hub "
            f"access is disabled ({why}). {tail}"
        ) from cache_error
    if not _hub_reachable():
        raise ModelUnavailable(
            f"Could not load model {name!r}: it is not in the local Hugging Face cache ({cache}) and the "
            f"Hub cannot be reached. {tail}"
        ) from cache_error


def _unusable(name: str, exc: Exception) -> ModelUnavailable:
    return ModelUnavailable(
        f"Model {name!r} was found but cannot be loaded as an image–text dual encoder by "
        f"this transformers version: {exc}"
    )


def _from_pretrained(source: str, *, cache_dir: str | None, local_files_only: bool, dtype: Any) -> tuple[Any, Any, Any]:
    """The three ``Auto*.from_pretrained`` calls, with one set of cache/offline options."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    options: dict[str, Any] = {"local_files_only": local_files_only}
    if cache_dir is not None:
        options["cache_dir"] = cache_dir
    # An explicit dtype: transformers 5 defaults to the checkpoint's dtype, and fp16 weights on a CPU are
    # slow or unsupported.
    model = AutoModel.from_pretrained(source, dtype=dtype, **options)
    image_processor = AutoImageProcessor.from_pretrained(source, **options)
    tokenizer = AutoTokenizer.from_pretrained(source, **options)
    return model, image_processor, tokenizer
