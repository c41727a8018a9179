"""The published pretrained models: metadata only (no framework import, no weights).

PQ values are the publishers' own, on the validation sets (COCO panoptic val2017,
Cityscapes val), single scale:

- DETR: Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020, Table 5
  (R50 43.4, R101 45.1); weights facebook/detr-resnet-{50,101}-panoptic (Apache-2.0).
- Mask2Former: Cheng et al., "Masked-attention Mask Transformer for Universal Image
  Segmentation", CVPR 2022, Tables 1 and 5 / MODEL_ZOO.md (COCO: Swin-T 53.2, Swin-L 57.8;
  Cityscapes: Swin-T 63.9, Swin-L 66.6); weights facebook/mask2former-swin-*-panoptic.
- Mask R-CNN v2: torchvision ``MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1`` (box AP 47.4,
  mask AP 41.8, BSD-3-Clause); a things-only model has no PQ.

Each entry names its post-processing rule (``postprocess``, see `vpanoptic.fusion.RULES`):
DETR entries DETR's ``PostProcessPanoptic``, Mask2Former entries Mask2Former's
``panoptic_inference``, the Mask R-CNN entries detectron2's Panoptic FPN combination.
Thresholds are the rule's defaults, as its authors set them.
"""

from __future__ import annotations

from typing import Any

from ...datasets import CITYSCAPES, COCO_PANOPTIC
from .preprocess import IMAGENET, UNIT, ResizeSpec
from .spec import ModelSpec
from .weight_cache import WeightSource

__all__ = ["CITYSCAPES_LABELS", "COCO_BY_ID", "COCO_CONTIGUOUS", "COCO_STUFF_LABELS", "COCO_THING_LABELS", "SPECS"]

_COCO_IDS = [c.id for c in COCO_PANOPTIC.categories]  # sorted, things first
# Mask2Former (detectron2): class index i = i-th COCO panoptic category in id order.
COCO_CONTIGUOUS = tuple(_COCO_IDS)
# DETR panoptic: 250 classes whose index is the COCO panoptic id itself (unused indices: -1).
COCO_BY_ID = tuple(i if i in set(_COCO_IDS) else -1 for i in range(250))
# torchvision detection: 91 indices = COCO ids 0..90 (0 background, "N/A" gaps: -1).
COCO_THING_LABELS = tuple(i if i in set(COCO_PANOPTIC.thing_ids) else -1 for i in range(91))
# Semantic FPN head of the combined model: index 0 = "a thing", 1..53 = the COCO stuff ids.
COCO_STUFF_LABELS = (-1,) + tuple(COCO_PANOPTIC.stuff_ids)
CITYSCAPES_LABELS = tuple(c.id for c in CITYSCAPES.categories)  # train ids 0..18

_HF_FILES = ("config.json", "model.safetensors")
_HF_ALTERNATES = ("pytorch_model.bin",)
_M2F_LICENSE = "see the model card (Mask2Former code: MIT)"
_RULE_LINE = {
    "detr": "post-processing: DETR PostProcessPanoptic",
    "mask2former": "post-processing: Mask2Former panoptic_inference",
    "panoptic-fpn": "post-processing: detectron2 Panoptic FPN combination",
}
_COCO_RESIZE = ResizeSpec(short_side=800, max_side=1333, size_divisor=32)
_CITYSCAPES_RESIZE = ResizeSpec(short_side=1024, max_side=2048, size_divisor=32)

# Swin backbones of Mask2Former (embed dim, depths, heads, window, pretraining size).
SWIN: dict[str, dict[str, Any]] = {
    "swin-tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, image_size=224),
    "swin-large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=12, image_size=384),
}


def _detr(name: str, depth: int, repo: str, pq: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="detr",
        meta=COCO_PANOPTIC,
        labels=COCO_BY_ID,
        norm=IMAGENET,
        resize=ResizeSpec(short_side=800, max_side=1333, size_divisor=1),
        weights=WeightSource("hf", repo, files=_HF_FILES, alternates=_HF_ALTERNATES),
        license="Apache-2.0",
        pq=pq,
        pq_source="DETR paper (Carion et al. 2020), Table 5, COCO panoptic val",
        description=f"DETR ResNet-{depth} panoptic, COCO (133 classes); Hugging Face {repo}; {_RULE_LINE['detr']}",
        # the authors' is_thing_map (models/detr.py build): class index <= 90 is a thing
        arch={"resnet_depth": depth, "num_queries": 100, "last_thing_index": 90},
        postprocess="detr",
    )


def _m2f(name: str, dataset: str, backbone: str, pq: float, queries: int) -> ModelSpec:
    coco = dataset == "coco"
    repo = f"facebook/mask2former-{backbone}-{'coco' if coco else 'cityscapes'}-panoptic"
    return ModelSpec(
        name=name,
        family="mask2former",
        meta=COCO_PANOPTIC if coco else CITYSCAPES,
        labels=COCO_CONTIGUOUS if coco else CITYSCAPES_LABELS,
        norm=IMAGENET,
        resize=_COCO_RESIZE if coco else _CITYSCAPES_RESIZE,
        weights=WeightSource("hf", repo, files=_HF_FILES, alternates=_HF_ALTERNATES),
        license=_M2F_LICENSE,
        pq=pq,
        pq_source="Mask2Former paper (Cheng et al. 2022) / MODEL_ZOO.md, "
        + ("COCO panoptic val" if coco else "Cityscapes val"),
        description=f"Mask2Former {backbone.replace('-', ' ').title()}, "
        + ("COCO panoptic (133 classes), for webcams" if coco else "Cityscapes panoptic (19 train ids), for dashcams")
        + f"; Hugging Face {repo}; {_RULE_LINE['mask2former']}",
        arch={"backbone": backbone, "num_queries": queries},
        postprocess="mask2former",
    )


_MASKRCNN_WEIGHTS = WeightSource("url", "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth")

SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _detr("detr-r50-panoptic", 50, "facebook/detr-resnet-50-panoptic", 43.4),
        _detr("detr-r101-panoptic", 101, "facebook/detr-resnet-101-panoptic", 45.1),
        _m2f("mask2former-swin-t-coco", "coco", "swin-tiny", 53.2, 100),
        _m2f("mask2former-swin-l-coco", "coco", "swin-large", 57.8, 200),
        _m2f("mask2former-swin-t-cityscapes", "cityscapes", "swin-tiny", 63.9, 100),
        _m2f("mask2former-swin-l-cityscapes", "cityscapes", "swin-large", 66.6, 200),
        ModelSpec(
            name="maskrcnn-v2-coco",
            family="maskrcnn",
            meta=COCO_PANOPTIC,
            labels=COCO_THING_LABELS,
            norm=UNIT,  # then torchvision's own ImageNet normalisation, on the device
            resize=ResizeSpec(short_side=800, max_side=1333, size_divisor=32),
            weights=_MASKRCNN_WEIGHTS,
            license="BSD-3-Clause",
            pq=None,
            pq_source="things only (box AP 47.4, mask AP 41.8 on COCO val2017, torchvision)",
            description="torchvision Mask R-CNN ResNet-50 FPN v2, COCO things only (stuff left void); "
            + _RULE_LINE["panoptic-fpn"],
            arch={},
            postprocess="panoptic-fpn",
        ),
        ModelSpec(
            name="maskrcnn-v2-semfpn-coco",
            family="maskrcnn-semantic",
            meta=COCO_PANOPTIC,
            labels=COCO_THING_LABELS,
            norm=UNIT,
            resize=ResizeSpec(short_side=800, max_side=1333, size_divisor=32),
            weights=None,  # no published semantic head: --weights is required
            license="your checkpoint's (Mask R-CNN part: BSD-3-Clause)",
            pq=None,
            pq_source="no published weights",
            description="Mask R-CNN v2 + Panoptic FPN semantic head; needs --weights (your checkpoint); "
            + _RULE_LINE["panoptic-fpn"],
            arch={"stuff_labels": COCO_STUFF_LABELS, "head_channels": 128},
            postprocess="panoptic-fpn",
        ),
    )
}
