"""`ModelEntry`: one registered model, its factory and the metadata `vpanoptic models` lists.

Family modules define their entries with this class and never import the registry, so the
registry can import them on use without a cycle.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import PanopticModel

__all__ = ["ModelEntry"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model. The optional fields describe published pretrained weights.

    name: registry name.
    description: one line for `vpanoptic models`.
    dataset: name of the dataset whose categories the model outputs.
    factory: a class or function taking ``device`` (and, if it wants it, ``input``, the
        source spec) plus the model's options as keyword arguments.
    pq: panoptic quality (%) as published on the dataset's validation set (None: not published).
    license: licence of the weights.
    weights_cached: returns whether the published weights are in the local cache (None: no weights).
    spec: the family's full metadata object (e.g. `hub.spec.ModelSpec`), when there is one.
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
