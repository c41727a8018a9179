"""The post-processing rules by name: which function, whose code it follows, its default thresholds.

A model entry names its rule (`ModelSpec.postprocess`); its thresholds are the rule's
defaults unless the entry's options override them. Each default cites where its authors
set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RULES", "PostprocessRule", "get_rule"]


@dataclass(frozen=True)
class PostprocessRule:
    """One published way of turning a family's outputs into a panoptic map.

    name: the rule's name, as model entries give it.
    function: the vpanoptic function implementing it.
    source: the authors' file and function it reproduces.
    thresholds: default value of each threshold option.
    threshold_sources: where the authors set each default.
    """

    name: str
    function: str
    source: str
    thresholds: Mapping[str, float] = field(default_factory=dict)
    threshold_sources: Mapping[str, str] = field(default_factory=dict)


RULES: dict[str, PostprocessRule] = {
    r.name: r
    for r in (
        PostprocessRule(
            name="detr",
            function="vpanoptic.fusion.detr_panoptic",
            source="facebookresearch/detr models/segmentation.py, PostProcessPanoptic.forward",
            thresholds={"score_threshold": 0.85, "small_area_threshold": 4},
            threshold_sources={
                "score_threshold": "models/detr.py build(): PostProcessPanoptic(is_thing_map, threshold=0.85)",
                "small_area_threshold": "models/segmentation.py PostProcessPanoptic.forward: area[i] <= 4",
            },
        ),
        PostprocessRule(
            name="mask2former",
            function="vpanoptic.fusion.combine_query_masks",
            source="facebookresearch/Mask2Former mask2former/maskformer_model.py, MaskFormer.panoptic_inference",
            thresholds={"score_threshold": 0.8, "mask_threshold": 0.5, "overlap_threshold": 0.8},
            threshold_sources={
                "score_threshold": "configs/*/panoptic-segmentation/*.yaml: "
                "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD 0.8",
                "mask_threshold": "mask2former/maskformer_model.py panoptic_inference: cur_masks[k] >= 0.5",
                "overlap_threshold": "configs/*/panoptic-segmentation/*.yaml: "
                "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD 0.8",
            },
        ),
        PostprocessRule(
            name="panoptic-fpn",
            function="vpanoptic.fusion.fuse_things_and_stuff",
            source="facebookresearch/detectron2 detectron2/modeling/meta_arch/panoptic_fpn.py, "
            "combine_semantic_and_instance_outputs",
            thresholds={
                "score_threshold": 0.5,
                "mask_threshold": 0.5,
                "overlap_threshold": 0.5,
                "stuff_area_threshold": 4096,
            },
            threshold_sources={
                "score_threshold": "detectron2/config/defaults.py: "
                "MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH 0.5",
                "mask_threshold": "detectron2/modeling/postprocessing.py detector_postprocess(mask_threshold=0.5)",
                "overlap_threshold": "detectron2/config/defaults.py: MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH 0.5",
                "stuff_area_threshold": "detectron2/config/defaults.py: "
                "MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT 4096",
            },
        ),
    )
}


def get_rule(name: str) -> PostprocessRule:
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown post-processing rule {name!r}; expected one of {', '.join(RULES)}") from None
