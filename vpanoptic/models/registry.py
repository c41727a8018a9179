"""The model registry: a table of names → the module that defines each entry, imported on use.

Listing names (`model_names`) imports nothing; `get_entry` imports only the module of the
entry asked for. Family modules define `ModelEntry` objects (`entry.py`) and never import
this module, so there is no import cycle. More models can be added at run time:

    @register_model("my-model", dataset="kitti-step", description="...")
    def build_my_model(*, device, **options) -> PanopticModel: ...

`build_model(name, device=..., **options)` checks the options against the factory's
signature, so a misspelt option is a one-line `ModelError`, not a TypeError deep inside.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..errors import ModelError
from .base import PanopticModel
from .entry import ModelEntry

__all__ = ["ModelEntry", "build_model", "get_entry", "list_models", "model_names", "register_model", "resolve_device"]

_HUB = "vpanoptic.models.hub.entries:ENTRIES"

# name → "module:attribute"; the attribute is a ModelEntry, or a mapping of name → ModelEntry.
BUILTIN: dict[str, str] = {
    "oracle": "vpanoptic.models.oracle:ENTRY",
    "vpanoptic-street": "vpanoptic.models.street.inference:ENTRY",
    "detr-r50-panoptic": _HUB,
    "detr-r101-panoptic": _HUB,
    "mask2former-swin-t-coco": _HUB,
    "mask2former-swin-l-coco": _HUB,
    "mask2former-swin-t-cityscapes": _HUB,
    "mask2former-swin-l-cityscapes": _HUB,
    "maskrcnn-v2-coco": _HUB,
    "maskrcnn-v2-semfpn-coco": _HUB,
}

_ADDED: dict[str, ModelEntry] = {}  # register_model
_LOADED: dict[str, ModelEntry] = {}  # BUILTIN entries imported so far


def register_model(
    name: str,
    *,
    description: str,
    dataset: str,
    pq: float | None = None,
    license: str | None = None,
    weights_cached: Callable[[], bool] | None = None,
    spec: Any = None,
):
    """Decorator adding a factory (a class or function taking keyword arguments) to the registry."""

    def decorator(factory):
        if name in BUILTIN or name in _ADDED:
            raise ValueError(f"model {name!r} is already registered")
        _ADDED[name] = ModelEntry(name, description, dataset, factory, pq, license, weights_cached, spec)
        return factory

    return decorator


def model_names() -> list[str]:
    """Every registered name, sorted, without importing any model module."""
    return sorted({*BUILTIN, *_ADDED})


def _load(name: str) -> ModelEntry:
    module_name, _, attr = BUILTIN[name].partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    entry = obj[name] if isinstance(obj, Mapping) else obj
    if not isinstance(entry, ModelEntry) or entry.name != name:
        raise RuntimeError(f"registry table: {BUILTIN[name]} does not define model {name!r}")
    return entry


def get_entry(name: str) -> ModelEntry:
    if name in _ADDED:
        return _ADDED[name]
    if name in BUILTIN:
        if name not in _LOADED:
            _LOADED[name] = _load(name)
        return _LOADED[name]
    close = difflib.get_close_matches(name, model_names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ModelError(f"unknown model {name!r}{hint} (available: {', '.join(model_names())}; see `vpanoptic models`)")


def list_models() -> list[ModelEntry]:
    return [get_entry(name) for name in model_names()]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' → CUDA when available, else CPU. An unavailable CUDA request is a `ModelError`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


def build_model(
    name: str, *, device: str | torch.device = "auto", input: str | None = None, **options: Any
) -> PanopticModel:
    """Instantiate a registered model on `device` with model-specific `options`.

    `input` (the source spec) is passed only to factories that accept it (e.g. the oracle,
    which finds the ground truth next to a synthetic clip).
    """
    entry = get_entry(name)
    params = inspect.signature(entry.factory).parameters
    known = entry.option_names()
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ModelError(
                f"model {name!r} has no option {key!r}{hint} (options: {', '.join(known) or 'none'})"
            )
    kwargs = dict(options)
    if "input" in params:
        kwargs["input"] = input
    return entry.factory(device=resolve_device(device), **kwargs)
