"""Dataset metadata (`DatasetMeta`) for the label sets vpanoptic reads and writes."""

from __future__ import annotations

import json
from importlib import resources

from .types import Category, DatasetMeta

__all__ = ["CITYSCAPES", "COCO_PANOPTIC", "KITTI_STEP", "MOTCHALLENGE_STEP", "VIPSEG", "get_meta"]

# Cityscapes train ids 0..18 with the official colours (cityscapesScripts labels.py).
_CITYSCAPES_CLASSES = [
    (0, "road", False, (128, 64, 128)),
    (1, "sidewalk", False, (244, 35, 232)),
    (2, "building", False, (70, 70, 70)),
    (3, "wall", False, (102, 102, 156)),
    (4, "fence", False, (190, 153, 153)),
    (5, "pole", False, (153, 153, 153)),
    (6, "traffic light", False, (250, 170, 30)),
    (7, "traffic sign", False, (220, 220, 0)),
    (8, "vegetation", False, (107, 142, 35)),
    (9, "terrain", False, (152, 251, 152)),
    (10, "sky", False, (70, 130, 180)),
    (11, "person", True, (220, 20, 60)),
    (12, "rider", True, (255, 0, 0)),
    (13, "car", True, (0, 0, 142)),
    (14, "truck", True, (0, 0, 70)),
    (15, "bus", True, (0, 60, 100)),
    (16, "train", True, (0, 80, 100)),
    (17, "motorcycle", True, (0, 0, 230)),
    (18, "bicycle", True, (119, 11, 32)),
]

CITYSCAPES = DatasetMeta(
    name="cityscapes",
    categories=tuple(Category(i, n, t, c) for i, n, t, c in _CITYSCAPES_CLASSES),
    label_divisor=1000,
    void_id=255,
)

# KITTI-STEP / MOTChallenge-STEP: the 19 Cityscapes train ids, but only person and car
# are tracked things (STEP paper, Weber et al. 2021); everything else is stuff.
KITTI_STEP = DatasetMeta(
    name="kitti-step",
    categories=tuple(Category(i, n, i in (11, 13), c) for i, n, _, c in _CITYSCAPES_CLASSES),
    label_divisor=1000,
    void_id=255,
)

# MOTChallenge-STEP: 7 classes (deeplab2 g3doc/setup/motchallenge_step.md), only person is
# a tracked thing; colours are the Cityscapes colours of the same classes.
MOTCHALLENGE_STEP = DatasetMeta(
    name="motchallenge-step",
    categories=(
        Category(0, "sidewalk", False, (244, 35, 232)),
        Category(1, "building", False, (70, 70, 70)),
        Category(2, "vegetation", False, (107, 142, 35)),
        Category(3, "sky", False, (70, 130, 180)),
        Category(4, "person", True, (220, 20, 60)),
        Category(5, "rider", False, (255, 0, 0)),
        Category(6, "bicycle", False, (119, 11, 32)),
    ),
    label_divisor=1000,
    void_id=255,
)


def _load_categories(file_name: str) -> tuple[Category, ...]:
    """Categories from a JSON list of ``{"id", "name", "isthing", "color"}`` in vpanoptic/data.

    Looked up through the regular package `vpanoptic.data`, one name at a time: a folder named
    ``vpanoptic`` in the working directory (a clone's top folder) can make `vpanoptic` itself
    a namespace package, whose `MultiplexedPath` takes one name per join on Python < 3.12.
    """
    text = (resources.files("vpanoptic.data") / file_name).read_text(encoding="utf-8")
    return tuple(
        Category(int(c["id"]), str(c["name"]), bool(c["isthing"]), tuple(c["color"])) for c in json.loads(text)
    )


# COCO panoptic: 133 categories (80 things, 53 stuff) with ids 1..200, exactly
# panopticapi's panoptic_coco_categories.json. Segment id 0 is void; as STEP labels, void is 255.
COCO_PANOPTIC = DatasetMeta(
    name="coco-panoptic",
    categories=_load_categories("coco_panoptic_categories.json"),
    label_divisor=1000,
    void_id=255,
)

# VIPSeg: 124 categories (58 things) with ids 0..123, exactly the VIPSeg repository's
# panoVIPSeg_categories.json; void is 255 as STEP labels (0 in the raw panomasks).
VIPSEG = DatasetMeta(
    name="vipseg",
    categories=_load_categories("vipseg_categories.json"),
    label_divisor=1000,
    void_id=255,
)

_METAS = {m.name: m for m in (CITYSCAPES, KITTI_STEP, MOTCHALLENGE_STEP, COCO_PANOPTIC, VIPSEG)}


def get_meta(name: str) -> DatasetMeta:
    try:
        return _METAS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(_METAS))}") from None
