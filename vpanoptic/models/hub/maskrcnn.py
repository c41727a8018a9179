"""torchvision Mask R-CNN (things only) and Mask R-CNN + a Panoptic FPN semantic head.

The detector runs as torchvision's ``GeneralizedRCNN`` does (transform → backbone → RPN →
ROI heads → postprocess), but the FPN features are kept so that the semantic head of the
combined model reuses them (one backbone pass, as in Panoptic FPN, Kirillov et al. 2019).
Instances and stuff are fused on the device by detectron2's Panoptic FPN rule
(`vpanoptic.fusion.fuse_things_and_stuff`), fed as detectron2's ``PanopticFPN.inference``
feeds it: semantic logits upsampled ×4 (bilinear), cropped to the resized image, resized
(bilinear) to the output size, then argmax (``sem_seg_postprocess``); instance masks
pasted at the output size and thresholded at ``>= 0.5``. The pasting itself is
torchvision's (``paste_masks_in_image``), not detectron2's.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelError
from ...fusion import PanopticSegments, fuse_things_and_stuff, map_categories
from .model import NetworkModel, label_lut
from .preprocess import FastPath
from .spec import ModelSpec
from .weight_cache import (
    check_state_dict,
    fetch_url_weights,
    load_state_dict,
    verify_file,
)

__all__ = ["MaskRCNNPanopticModel", "PanopticFPN", "SemanticFPNHead", "build_detector", "load_maskrcnn_network"]

FPN_LEVELS = ("0", "1", "2", "3")  # torchvision FPN outputs at strides 4, 8, 16, 32


class SemanticFPNHead(nn.Module):
    """Panoptic FPN's semantic branch: each FPN level → stride 4, summed, 1×1 classifier.

    Input: FPN features ``{level: (B, in_channels, H/s, W/s)}`` for strides 4..32.
    Output: logits ``(B, num_classes, H/4, W/4)``.
    """

    def __init__(self, in_channels: int = 256, channels: int = 128, num_classes: int = 54, num_groups: int = 32):
        super().__init__()
        self.scale_heads = nn.ModuleList()
        for level in range(len(FPN_LEVELS)):
            layers: list[nn.Module] = []
            for k in range(max(1, level)):
                layers += [
                    nn.Conv2d(in_channels if k == 0 else channels, channels, 3, padding=1, bias=False),
                    nn.GroupNorm(min(num_groups, channels), channels),
                    nn.ReLU(inplace=True),
                ]
                if level > 0:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*layers))
        self.predictor = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: OrderedDict[str, torch.Tensor]) -> torch.Tensor:
        x = None
        for head, level in zip(self.scale_heads, FPN_LEVELS):
            y = head(features[level])
            x = y if x is None else x + y[..., : x.shape[-2], : x.shape[-1]]
        return self.predictor(x)


class PanopticFPN(nn.Module):
    """A torchvision Mask R-CNN (``detector``) plus a `SemanticFPNHead` (``semantic_head``).

    Its state dict (``detector.*``, ``semantic_head.*``) is the checkpoint layout of the
    combined model.
    """

    def __init__(self, detector: nn.Module, semantic_head: nn.Module | None):
        super().__init__()
        self.detector = detector
        self.semantic_head = semantic_head

    def forward(self, images: list[torch.Tensor]):
        """images: B tensors ``(3, H, W) float`` in [0, 1]. Returns (detections, semantic logits or None, sizes)."""
        det: Any = self.detector  # torchvision's MaskRCNN; nn.Module types its children loosely
        original_sizes = [tuple(img.shape[-2:]) for img in images]
        image_list, _ = det.transform(images)
        features = det.backbone(image_list.tensors)
        proposals, _ = det.rpn(image_list, features)
        detections, _ = det.roi_heads(features, proposals, image_list.image_sizes)
        detections = det.transform.postprocess(detections, image_list.image_sizes, original_sizes)
        logits = self.semantic_head(features) if self.semantic_head is not None else None
        return detections, logits, image_list.image_sizes


def build_detector(num_classes: int = 91, *, short_side: int = 800, max_side: int = 1333) -> nn.Module:
    """torchvision ``maskrcnn_resnet50_fpn_v2`` architecture with random weights (no download)."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    return maskrcnn_resnet50_fpn_v2(
        weights=None, weights_backbone=None, num_classes=num_classes, min_size=short_side, max_size=max_side
    )


def load_maskrcnn_network(spec: ModelSpec, weights: str | None, *, short_side: int, max_side: int) -> PanopticFPN:
    """The network of a Mask R-CNN entry with its weights (``--weights`` file or the torch hub cache).

    The file is located, checksummed and read before the network is built, so a missing or
    corrupted file fails fast.
    """
    if weights is None:
        if spec.weights is None:
            raise ModelError(
                f"model {spec.name!r} has no published weights: pass --weights FILE, a checkpoint with "
                "detector.* (torchvision Mask R-CNN v2) and semantic_head.* tensors"
            )
        path = fetch_url_weights(spec.weights, spec.name)
    else:
        path = Path(weights).expanduser()
        if spec.weights is not None and path.name == spec.weights.filename and path.is_file():
            verify_file(path, spec.weights)  # a copy of the published file: its checksum is known
    state = load_state_dict(path)
    detector = build_detector(len(spec.labels), short_side=short_side, max_side=max_side)
    head = None
    if spec.family == "maskrcnn-semantic":
        head = SemanticFPNHead(channels=spec.arch["head_channels"], num_classes=len(spec.arch["stuff_labels"]))
    net = PanopticFPN(detector, head)
    if head is None and not any(k.startswith("detector.") for k in state):
        state = {f"detector.{k}": v for k, v in state.items()}  # torchvision's own layout
    check_state_dict(net, state, path, spec.name)
    return net


class MaskRCNNPanopticModel(NetworkModel):
    """Mask R-CNN things (+ semantic-head stuff) fused by detectron2's rule on the device.

    Args:
        spec: family "maskrcnn" (things only; stuff void) or "maskrcnn-semantic".
        net: a `PanopticFPN` (``semantic_head`` None for things only).
        score_threshold, overlap_threshold, stuff_area_threshold: the rule's thresholds
            (`vpanoptic.fusion.fuse_things_and_stuff`).
        mask_threshold: instance mask probability that counts as foreground.

    A detection whose class index has no COCO category (torchvision's "N/A" indices) is
    pasted as the rule has it, then its segment is voided (`vpanoptic.fusion.map_categories`).
    """

    def __init__(
        self,
        spec: ModelSpec,
        net: PanopticFPN,
        *,
        device: torch.device | str = "cpu",
        fast: FastPath = FastPath(),
        score_threshold: float | None = None,
        mask_threshold: float | None = None,
        overlap_threshold: float | None = None,
        stuff_area_threshold: int | None = None,
    ):
        options = dict(score_threshold=score_threshold, mask_threshold=mask_threshold)
        options.update(overlap_threshold=overlap_threshold, stuff_area_threshold=stuff_area_threshold)
        super().__init__(spec, device=device, fast=fast, thresholds=options)
        if (net.semantic_head is not None) != (spec.family == "maskrcnn-semantic"):
            raise ModelError(
                f"model {spec.name!r}: network {'lacks' if net.semantic_head is None else 'has'} a semantic head"
            )
        self._labels, _ = label_lut(spec, self.device)
        stuff = spec.arch.get("stuff_labels", (-1,))
        self._stuff_labels = torch.tensor(stuff, dtype=torch.int64, device=self.device)
        self._stuff_ids = torch.tensor(
            [c for c in stuff if c >= 0], dtype=torch.int64, device=self.device
        )  # head order
        self._setup_net(net)

    def _infer(self, images: torch.Tensor) -> list[PanopticSegments]:
        x = images.float().div_(255)
        if self.fast.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        detections, logits, sizes = self._forward(list(x.unbind(0)))
        height, width = images.shape[-2:]
        results = []
        for b, det in enumerate(detections):
            cats = self._labels[det["labels"].clamp(0, len(self.spec.labels) - 1)]  # -1: no COCO category
            masks = det["masks"][:, 0] >= self.thresholds["mask_threshold"]  # [N, H, W]
            semantic = None
            if logits is not None:
                semantic = self._stuff_labels[self._semantic_index(logits[b : b + 1], sizes[b], (height, width))]
            seg = fuse_things_and_stuff(
                masks,
                det["scores"].float(),
                cats,
                semantic,  # [H, W] category id, -1 = the "things" class
                stuff_ids=self._stuff_ids,
                score_threshold=self.thresholds["score_threshold"],
                overlap_threshold=self.thresholds["overlap_threshold"],
                stuff_area_threshold=int(self.thresholds["stuff_area_threshold"]),
                height=height,
                width=width,
            )
            results.append(map_categories(seg))  # segments of "N/A" classes → void
        return results

    @staticmethod
    def _semantic_index(logits: torch.Tensor, image_size: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
        """``(1, C, h4, w4)`` head logits → ``(H, W) int64`` head class per output pixel.

        As detectron2: ``SemSegFPNHead`` upsamples ×4 (bilinear), ``sem_seg_postprocess``
        crops to the resized image and resizes (bilinear) to the output size, then argmax.
        """
        h, w = image_size
        lg = F.interpolate(logits.float(), scale_factor=4, mode="bilinear", align_corners=False)[:, :, :h, :w]
        lg = F.interpolate(lg, size=tuple(out_size), mode="bilinear", align_corners=False)
        return lg[0].argmax(0)
