"""The metadata of one published model (`ModelSpec`), before any weights are loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...fusion import get_rule
from ...types import DatasetMeta
from .preprocess import Normalization, ResizeSpec
from .weight_cache import WeightSource, is_cached

__all__ = ["ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything known about one published model, before any weights are loaded.

    name: registry name.
    family: "detr", "mask2former", "maskrcnn" or "maskrcnn-semantic".
    meta: dataset whose category ids the model outputs.
    labels: network class index → dataset category id (-1: an index the dataset has no category for).
    norm, resize: input normalisation and test-time size, as published.
    weights: where the published weights live (None: no published weights).
    license: licence of the weights.
    pq: panoptic quality (%) on the dataset's validation set as published, None if not published.
    pq_source: where that number is published.
    arch: architecture parameters of the family's builder (backbone, widths, queries, ...).
    thresholds: default post-processing thresholds (model options of the same names); the
        rule's defaults (`vpanoptic.fusion.RULES`) unless the entry overrides one.
    description: one line for `vpanoptic models`.
    postprocess: name of the post-processing rule in `vpanoptic.fusion.RULES` ("detr",
        "mask2former", "panoptic-fpn"): the authors' code the outputs are fused as.
    """

    name: str
    family: str
    meta: DatasetMeta
    labels: tuple[int, ...]
    norm: Normalization
    resize: ResizeSpec
    weights: WeightSource | None
    license: str
    pq: float | None
    pq_source: str
    description: str
    arch: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    postprocess: str = ""

    def __post_init__(self):
        if self.postprocess:
            rule = get_rule(self.postprocess)
            extra = set(self.thresholds) - set(rule.thresholds)
            if extra:
                raise ValueError(
                    f"model spec {self.name!r}: thresholds {sorted(extra)} are not options of rule {rule.name!r}"
                )
            object.__setattr__(
                self, "thresholds", {**rule.thresholds, **self.thresholds}
            )  # the rule's defaults filled in
        bad = [c for c in self.labels if c >= 0 and c not in {k.id for k in self.meta.categories}]
        if bad:
            raise ValueError(f"model spec {self.name!r}: label ids {bad[:5]} are not in dataset {self.meta.name!r}")

    def weights_cached(self) -> bool:
        return is_cached(self.weights)
