"""The model registry: named factories, each entry carrying its own metadata.

    @register_model("oracle", dataset="kitti-step", description="...")
    def build_oracle(*, device, **options) -> PanopticModel: ...

`build_model(name, device=..., **options)` checks the options against the factory's
signature, so a misspelt option is a one-line `ModelError`, not a TypeError deep inside.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import ModelError
from .base import PanopticModel

__all__ = ["ModelEntry", "register_model", "build_model", "list_models", "get_entry", "resolve_device"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model. The optional fields describe published pretrained weights.

    pq: panoptic quality (%) as published on the dataset's validation set (None: not published).
    license: licence of the weights.
    weights_cached: returns whether the published weights are in the local cache (None: no weights).
    spec: the family's full metadata object (e.g. `network.ModelSpec`), when there is one.
    """

    name: str
    description: str
    dataset: str
    factory: Callable[..., PanopticModel]
    pq: float | None = None
    license: str | None = None
    weights_cached: Callable[[], bool] | None = None
    spec: Any = None

    def option_names(self) -> list[str]:
        params = inspect.signature(self.factory).parameters
        return [p for p in params if p not in ("device", "input")]


_REGISTRY: dict[str, ModelEntry] = {}


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
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, description, dataset, factory, pq, license, weights_cached, spec)
        return factory

    return decorator


def _ensure_builtin_models() -> None:
    # Importing the modules runs their @register_model decorators.
    from . import oracle  # noqa: F401
    from . import pretrained  # noqa: F401
    from . import street  # noqa: F401


def list_models() -> list[ModelEntry]:
    _ensure_builtin_models()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_entry(name: str) -> ModelEntry:
    _ensure_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ModelError(
            f"unknown model {name!r}{hint} (available: {', '.join(sorted(_REGISTRY))}; see `vpanoptic models`)"
        ) from None


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


def build_model(name: str, *, device: str | torch.device = "auto", input: str | None = None, **options: Any) -> PanopticModel:
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
