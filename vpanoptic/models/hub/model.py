"""What every pretrained network model shares: the model loop and the threshold options.

`NetworkModel.predict` groups a batch by frame size, uploads each group through the reused
host buffer, runs the family's `_infer` under ``torch.inference_mode`` and autocast, and
wraps the fused device tensors into `PanopticFrame`s. The id map stays on the device; the
segment table (a few numbers per segment) is the only other device → host copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...errors import ModelError
from ...fusion import PanopticSegments, get_rule
from ...types import DatasetMeta, Frame, PanopticFrame
from ..base import PanopticModel
from .preprocess import FastPath, FrameUploader, autocast, group_by_size
from .spec import ModelSpec

__all__ = ["NetworkModel", "check_thresholds", "label_lut", "resolve_thresholds", "to_panoptic_frame"]


def label_lut(spec: ModelSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Device lookup tables: ``(C,) int64`` class index → category id (-1 none) and ``(C,) bool`` is-thing."""
    labels = torch.tensor(spec.labels, dtype=torch.int64)
    things = torch.tensor([c >= 0 and spec.meta.category(c).isthing for c in spec.labels], dtype=torch.bool)
    return labels.to(device), things.to(device)


def resolve_thresholds(spec: ModelSpec, given: Mapping[str, float | None]) -> dict[str, float]:
    """The rule's thresholds: each given value, else the entry's default, else the rule's.

    A threshold the entry's rule does not have is a `ModelError` when it is given.
    """
    rule = get_rule(spec.postprocess)
    unknown = sorted(k for k, v in given.items() if v is not None and k not in rule.thresholds)
    if unknown:
        raise ModelError(
            f"model {spec.name!r} (post-processing rule {rule.name!r}) has no option {unknown[0]}; "
            f"its thresholds: {', '.join(rule.thresholds)}"
        )
    values = {}
    for key, default in rule.thresholds.items():
        value = given.get(key)
        values[key] = float(value if value is not None else spec.thresholds.get(key, default))
    check_thresholds(spec.name, values)
    return values


def check_thresholds(name: str, values: Mapping[str, float]) -> None:
    for key, value in values.items():
        if key.endswith("_area_threshold"):
            if value < 0:
                raise ModelError(f"model {name!r} option {key} is {value}; expected >= 0")
        elif not 0 <= value <= 1:
            raise ModelError(f"model {name!r} option {key} is {value}; expected 0 <= x <= 1")


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise ModelError("the model has no network: it was closed (or never set up)")


class NetworkModel(PanopticModel):
    """Base of the pretrained-network models: batching, upload, autocast, output wrapping.

    Subclasses set `self.net` and implement `_infer(images) -> list[PanopticSegments]`,
    with images ``(B, 3, H, W) uint8`` on the device. `thresholds` are the rule options the
    user gave (None = the entry's default); `self.thresholds` holds them all, resolved.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: torch.device | str,
        fast: FastPath,
        thresholds: Mapping[str, float | None],
    ):
        self.spec = spec
        self.thresholds = resolve_thresholds(spec, thresholds)
        self.meta = spec.meta
        self.device = torch.device(device)
        self.fast = fast
        self.uploader = FrameUploader(self.device)
        self._forward: Callable[..., Any] = _no_network

    def _setup_net(self, net: torch.nn.Module) -> None:
        """Move `net` to the device in eval mode, apply channels_last and torch.compile options."""
        net = net.eval().to(self.device)
        for p in net.parameters():
            p.requires_grad_(False)
        if self.fast.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net
        self._forward = torch.compile(net) if self.fast.compile else net

    def predict(self, frames: Sequence[Frame]) -> list[PanopticFrame]:
        out: list[PanopticFrame | None] = [None] * len(frames)
        for group in group_by_size(frames):
            images = self.uploader.upload([frames[i] for i in group])
            with torch.inference_mode(), autocast(self.device, self.fast.autocast):
                results = self._infer(images)
            for i, seg in zip(group, results):
                out[i] = to_panoptic_frame(frames[i], seg, self.meta)
        return out  # type: ignore[return-value]

    def _infer(self, images: torch.Tensor) -> list[PanopticSegments]:
        raise NotImplementedError

    def close(self) -> None:
        self.net = None  # type: ignore[assignment]
        self._forward = _no_network
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def to_panoptic_frame(frame: Frame, seg: PanopticSegments, meta: DatasetMeta) -> PanopticFrame:
    """Wrap fused device tensors; the segment table crosses to the host in one small copy."""
    s = len(seg)
    table = torch.stack([seg.category_ids.double(), seg.scores.double(), seg.is_thing.double()]).cpu().numpy()  # [3, S]
    return PanopticFrame(
        frame=frame,
        id_map=seg.id_map,
        segment_ids=np.arange(1, s + 1, dtype=np.int32),
        category_ids=table[0].astype(np.int32),
        meta=meta,
        is_thing=table[2].astype(bool),
        scores=table[1].astype(np.float32),
    )
