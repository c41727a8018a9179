"""Panoptic models: the interface, the registry and one subpackage per family.

- `base.PanopticModel`: the interface every model implements.
- `registry`: names → entries, imported on use (`build_model`, `get_entry`, `list_models`).
- `street/`: StreetNet, the bundled default model (inference, grouping, training, data).
- `hub/`: published pretrained models (DETR, Mask2Former, Mask R-CNN).
- `oracle`: the ground truth of a synthetic clip, optionally degraded.
"""

from .base import PanopticModel
from .entry import ModelEntry
from .registry import (
    build_model,
    get_entry,
    list_models,
    model_names,
    register_model,
    resolve_device,
)

__all__ = [
    "ModelEntry",
    "PanopticModel",
    "build_model",
    "get_entry",
    "list_models",
    "model_names",
    "register_model",
    "resolve_device",
]
