"""DETR and Mask2Former panoptic models through Hugging Face `transformers` (extra ``hf``).

Both are mask-classification models: Q queries, each with class logits ``(C+1,)`` (the last
is "no object") and a mask at stride 4. Post-processing runs on the device, by the entry's
rule (`ModelSpec.postprocess`): DETR's ``PostProcessPanoptic``
(`vpanoptic.fusion.detr_panoptic`) or Mask2Former's ``panoptic_inference``
(`vpanoptic.fusion.combine_query_masks`), each fed as its authors' code feeds it.

Weights load with ``from_pretrained`` from a local folder (the hub's layout: ``config.json``
plus ``model.safetensors``), never by unpickling; the folder comes from ``--weights`` or
from the hub cache (``$HF_HOME``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ...errors import ModelError
from ...fusion import (
    PanopticSegments,
    combine_query_masks,
    detr_panoptic,
    map_categories,
)
from .model import NetworkModel, label_lut
from .preprocess import FastPath, prepare_batch
from .spec import ModelSpec
from .weight_cache import fetch_hf_snapshot
from .zoo import SWIN

__all__ = ["QueryPanopticModel", "load_hf_network", "random_config", "require_transformers"]

INSTALL_HF = "pip install 'vpanoptic[hf]'"


def require_transformers(model: str):
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ModelError(f"model {model!r} needs Hugging Face transformers: {INSTALL_HF}") from None
    return transformers


def _network_class(spec: ModelSpec):
    tf = require_transformers(spec.name)
    return tf.DetrForSegmentation if spec.family == "detr" else tf.Mask2FormerForUniversalSegmentation


def random_config(spec: ModelSpec, **overrides: Any):
    """A `transformers` config of the published architecture (random weights), e.g. for benchmarks.

    `overrides` replace top-level config fields (tests use tiny widths).
    """
    tf = require_transformers(spec.name)
    num_labels = len(spec.labels)
    stages = ["stage1", "stage2", "stage3", "stage4"]
    if spec.family == "detr":
        depths = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[spec.arch["resnet_depth"]]
        backbone = tf.ResNetConfig(
            depths=depths, layer_type="bottleneck", hidden_sizes=[256, 512, 1024, 2048], out_features=stages
        )
        kwargs = dict(
            backbone_config=backbone,
            use_timm_backbone=False,
            num_labels=num_labels,
            num_queries=spec.arch["num_queries"],
        )
        kwargs.update(overrides)
        return tf.DetrConfig(**kwargs)
    swin = SWIN[spec.arch["backbone"]]
    backbone = tf.SwinConfig(
        embed_dim=swin["embed_dim"],
        depths=list(swin["depths"]),
        num_heads=list(swin["num_heads"]),
        window_size=swin["window_size"],
        image_size=swin["image_size"],
        out_features=stages,
    )
    kwargs = dict(backbone_config=backbone, num_labels=num_labels, num_queries=spec.arch["num_queries"])
    kwargs.update(overrides)
    return tf.Mask2FormerConfig(**kwargs)


def _weights_folder(spec: ModelSpec, weights: str | None) -> Path:
    if weights is None:
        if spec.weights is None:
            raise ModelError(f"model {spec.name!r} has no published weights; pass --weights FOLDER")
        return fetch_hf_snapshot(spec.weights, spec.name)
    path = Path(weights).expanduser()
    if path.is_file():  # a weights file inside a hub-layout folder
        path = path.parent
    if not (path / "config.json").is_file():
        raise ModelError(
            f"--weights {weights}: expected a folder in the Hugging Face layout (config.json + model.safetensors), "
            f"e.g. from `hf download {spec.weights.location if spec.weights else 'REPO'}`"
        )
    return path


def load_hf_network(spec: ModelSpec, weights: str | None) -> torch.nn.Module:
    """The network of `spec` with weights from `weights` (a hub-layout folder) or the hub cache."""
    import importlib.util

    if importlib.util.find_spec("transformers") is None:  # the missing extra first, without the slow import
        require_transformers(spec.name)
    folder = _weights_folder(spec, weights)  # offline is known before transformers loads (seconds)
    cls = _network_class(spec)
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # a mismatch is reported by us, as one line
    try:
        net, info = cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    except ModelError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"weights in {folder} cannot be loaded for model {spec.name!r}: {first}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    missing = list(info.get("missing_keys", [])) + list(info.get("mismatched_keys", []))
    if missing:
        raise ModelError(
            f"weights in {folder} do not fit model {spec.name!r}: "
            f"{len(missing)} missing or mismatched tensors (e.g. {missing[0]})"
        )
    if net.config.num_labels != len(spec.labels):
        raise ModelError(
            f"weights in {folder} predict {net.config.num_labels} classes; "
            f"model {spec.name!r} expects {len(spec.labels)}"
        )
    return net


class QueryPanopticModel(NetworkModel):
    """A DETR or Mask2Former network with device-side post-processing by the entry's rule.

    Args:
        spec: the entry's `ModelSpec` (family "detr" or "mask2former").
        net: the `transformers` network, with ``config.num_labels == len(spec.labels)``.
        score_threshold: queries whose best class probability is at most this are dropped.
        mask_threshold, overlap_threshold: Mask2Former's rule (`vpanoptic.fusion.combine_query_masks`).
        small_area_threshold: DETR's rule (`vpanoptic.fusion.detr_panoptic`).
        short_side, max_side: test-time resize (0 keeps the frame size); defaults as published.

    A threshold that the entry's rule does not have is a `ModelError`. A query whose class
    index has no dataset category takes part in the rule and its segment is then voided
    (`vpanoptic.fusion.map_categories`).
    """

    def __init__(
        self,
        spec: ModelSpec,
        net: torch.nn.Module,
        *,
        device: torch.device | str = "cpu",
        fast: FastPath = FastPath(),
        score_threshold: float | None = None,
        mask_threshold: float | None = None,
        overlap_threshold: float | None = None,
        small_area_threshold: int | None = None,
        short_side: int | None = None,
        max_side: int | None = None,
    ):
        options = dict(score_threshold=score_threshold, mask_threshold=mask_threshold)
        options.update(overlap_threshold=overlap_threshold, small_area_threshold=small_area_threshold)
        super().__init__(spec, device=device, fast=fast, thresholds=options)
        r = spec.resize
        self.resize = type(r)(
            short_side=r.short_side if short_side is None else int(short_side),
            max_side=r.max_side if max_side is None else int(max_side),
            size_divisor=r.size_divisor,
        )
        config: Any = net.config  # a transformers PretrainedConfig
        if config.num_labels != len(spec.labels):
            raise ModelError(
                f"network predicts {config.num_labels} classes; model {spec.name!r} expects {len(spec.labels)}"
            )
        self._labels, self._is_thing = label_lut(spec, self.device)
        if spec.postprocess == "detr":  # the authors' is_thing_map, unknown class indices included
            last = spec.arch["last_thing_index"]
            self._is_thing = torch.arange(len(spec.labels), device=self.device) <= last
        self._setup_net(net)

    def _infer(self, images: torch.Tensor) -> list[PanopticSegments]:
        height, width = images.shape[-2:]
        pixels, (h, w) = prepare_batch(
            images, resize=self.resize, norm=self.spec.norm, channels_last=self.fast.channels_last
        )
        out = self._forward(pixel_values=pixels)
        if self.spec.family == "detr":
            class_logits, mask_logits = out.logits, out.pred_masks  # [B, Q, C+1], [B, Q, h/4, w/4]
        else:
            class_logits, mask_logits = out.class_queries_logits, out.masks_queries_logits
        return [
            self._postprocess(class_logits[b], mask_logits[b], pixels.shape[-2:], (h, w), (height, width))
            for b in range(images.shape[0])
        ]

    def _postprocess(self, class_logits, mask_logits, padded, resized, frame_size) -> PanopticSegments:
        """One image: ``(Q, C+1)`` class logits and ``(Q, h4, w4)`` mask logits → panoptic."""
        probs = class_logits.float().softmax(-1)
        scores, labels = probs.max(-1)  # [Q]
        num_classes = probs.shape[-1] - 1
        keep = (labels != num_classes) & (scores > self.thresholds["score_threshold"])
        idx = keep.nonzero().squeeze(1)  # [K]
        masks = mask_logits[idx].float()  # [K, h4, w4]
        classes = labels[idx]
        if self.spec.postprocess == "detr":
            # models/segmentation.py: logits resized to the processed size, the id map to the target size
            seg = detr_panoptic(
                masks,
                scores[idx],
                classes,
                self._is_thing[classes],
                processed_size=tuple(resized),
                target_size=tuple(frame_size),
                small_area_threshold=int(self.thresholds["small_area_threshold"]),
            )
            return map_categories(seg, self._labels)
        # Mask2Former: to the padded size, crop the padding, to the frame size, then sigmoid
        h, w = resized
        if idx.numel():
            masks = F.interpolate(masks[None], size=tuple(padded), mode="bilinear", align_corners=False)[0][:, :h, :w]
            masks = F.interpolate(masks[None], size=tuple(frame_size), mode="bilinear", align_corners=False)[0]
        else:
            masks = masks.new_zeros((0, *frame_size))
        seg = combine_query_masks(
            masks.sigmoid(),
            scores[idx],
            classes,
            self._is_thing[classes],
            mask_threshold=self.thresholds["mask_threshold"],
            overlap_threshold=self.thresholds["overlap_threshold"],
        )
        return map_categories(seg, self._labels)
