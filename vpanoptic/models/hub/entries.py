"""Registry entries of the published pretrained models (`ENTRIES`; metadata in `zoo.SPECS`).

Every entry takes the same fast-path options (``--set model.options.NAME=VALUE``):
``weights`` (a local file or folder instead of the cache; also ``vpanoptic run --weights``),
``autocast`` (none | bf16 | fp16), ``channels_last``, ``compile``, plus the thresholds of
its post-processing rule (`vpanoptic.fusion.RULES`, defaults as its authors set them) and
the test-time size.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from ...errors import ModelError
from ...fusion.rules import get_rule
from ..entry import ModelEntry
from .preprocess import FastPath
from .spec import ModelSpec
from .zoo import SPECS

__all__ = ["ENTRIES", "fast_path"]


def fast_path(autocast: str | None, channels_last: bool, compile: bool) -> FastPath:
    """Translate the model options into a `FastPath` ("none" and "fp32" mean no autocast)."""
    mode = None if autocast in (None, "none", "fp32", False) else str(autocast)
    return FastPath(autocast=mode, channels_last=bool(channels_last), compile=bool(compile))


def _register_query_model(spec: ModelSpec) -> None:
    def build(
        *,
        device: torch.device,
        weights: str | None = None,
        autocast: str | None = None,
        channels_last: bool = False,
        compile: bool = False,
        short_side: int | None = None,
        max_side: int | None = None,
        **thresholds: Any,
    ):
        from .hf import QueryPanopticModel, load_hf_network

        fast = fast_path(autocast, channels_last, compile)  # option errors before any loading
        net = load_hf_network(spec, weights)
        return QueryPanopticModel(spec, net, device=device, fast=fast, short_side=short_side, max_side=max_side,
                                  **thresholds)

    # The registry reads an entry's options from its signature: the thresholds are those of
    # the entry's post-processing rule (DETR's and Mask2Former's differ).
    fixed = [p for p in inspect.signature(build).parameters.values() if p.kind is not p.VAR_KEYWORD]
    rule = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation="float | None")
            for name in get_rule(spec.postprocess).thresholds]
    build.__signature__ = inspect.Signature(fixed + rule)  # type: ignore[attr-defined]
    _register(spec, build)


def _register_maskrcnn_model(spec: ModelSpec) -> None:
    def build(
        *,
        device: torch.device,
        weights: str | None = None,
        autocast: str | None = None,
        channels_last: bool = False,
        compile: bool = False,
        score_threshold: float | None = None,
        mask_threshold: float | None = None,
        overlap_threshold: float | None = None,
        stuff_area_threshold: int | None = None,
        short_side: int | None = None,
        max_side: int | None = None,
        max_instances: int = 100,
    ):
        from .maskrcnn import MaskRCNNPanopticModel, load_maskrcnn_network

        fast = fast_path(autocast, channels_last, compile)
        short = spec.resize.short_side if short_side is None else int(short_side)
        long = spec.resize.max_side if max_side is None else int(max_side)
        if short <= 0 or long < short:
            raise ModelError(
                f"model {spec.name!r}: short_side {short} and max_side {long}; expected 0 < short_side <= max_side"
            )
        if max_instances < 1:
            raise ModelError(f"model {spec.name!r} option max_instances is {max_instances}; expected >= 1")
        net = load_maskrcnn_network(spec, weights, short_side=short, max_side=long)
        roi_heads: Any = net.detector.roi_heads  # torchvision's RoIHeads; nn.Module types it loosely
        roi_heads.detections_per_img = int(max_instances)
        return MaskRCNNPanopticModel(
            spec,
            net,
            device=device,
            fast=fast,
            score_threshold=score_threshold,
            mask_threshold=mask_threshold,
            overlap_threshold=overlap_threshold,
            stuff_area_threshold=stuff_area_threshold,
        )

    _register(spec, build)


def _register(spec: ModelSpec, build) -> None:
    build.__name__ = f"build_{spec.name.replace('-', '_')}"
    build.__doc__ = spec.description
    ENTRIES[spec.name] = ModelEntry(
        name=spec.name,
        description=spec.description,
        dataset=spec.meta.name,
        factory=build,
        pq=spec.pq,
        license=spec.license,
        weights_cached=spec.weights_cached if spec.weights is not None else None,
        spec=spec,
    )


ENTRIES: dict[str, ModelEntry] = {}
for _spec in SPECS.values():
    if _spec.family in ("detr", "mask2former"):
        _register_query_model(_spec)
    else:
        _register_maskrcnn_model(_spec)
