"""Pure functions that turn model outputs into one panoptic id map, on the tensors' device.

One function per published rule, each equal to its authors' code (see `rules.RULES`):

- `detr_panoptic`: DETR's ``PostProcessPanoptic`` (softmax over the queries' mask logits,
  stuff merging, iterative removal of segments of at most 4 pixels, nearest resize).
- `combine_query_masks`: Mask2Former's ``panoptic_inference`` (argmax of score × mask
  probability, void below 0.5, overlap test, stuff merging).
- `fuse_things_and_stuff`: detectron2's ``combine_semantic_and_instance_outputs`` (things
  pasted by score with an overlap test, stuff fills the free pixels above an area).

All take and return torch tensors on any device. No state, no model code.
"""

from .detr import detr_panoptic, pil_nearest_indices
from .mask2former import combine_query_masks
from .panoptic_fpn import fuse_things_and_stuff
from .rules import RULES, PostprocessRule, get_rule
from .segments import (
    PanopticSegments,
    compact,
    drop_empty,
    empty_segments,
    map_categories,
)

__all__ = [
    "RULES",
    "PanopticSegments",
    "PostprocessRule",
    "combine_query_masks",
    "compact",
    "detr_panoptic",
    "drop_empty",
    "empty_segments",
    "fuse_things_and_stuff",
    "get_rule",
    "map_categories",
    "pil_nearest_indices",
]
