"""COCO-panoptic style formats: COCO panoptic (images), Cityscapes-VPS and VIPSeg (videos).

All three store an RGB PNG per frame with segment id ``R + 256 G + 256² B`` (0 = VOID) and a
JSON with ``segments_info`` (``id``, ``category_id``, ``iscrowd``) per frame:

- **COCO panoptic** (panopticapi): ``panoptic_val2017.json`` with ``images``, ``annotations``
  (``image_id``, ``file_name``, ``segments_info``) and ``categories``; PNGs in the folder named
  like the JSON (``panoptic_val2017/``). vpanoptic's ``coco`` output (``panoptic.json`` +
  ``panoptic/``) has the same layout. All images form one sequence.
- **Cityscapes-VPS** (mcahny/vps ``prepare_city_vps/create_panoptic_video_labels.py``):
  ``panoptic_gt_val_city_vps.json`` with ``images`` / ``annotations`` / ``categories`` (the 19
  Cityscapes train ids); PNGs in ``val/panoptic_video/``. ``image_id`` is
  ``<video:4>_<frame:4>_<city>_<seq>_<frame>``; a video is the images sharing the first 4
  characters. A segment id is the same object in every frame of its video. Predictions
  (``tools/eval_vpq.py``): ``pred.json`` + ``pan_pred/<image_id>.png``.
- **VIPSeg** (VIPSeg-Dataset ``create_panoptic_video_labels.py``): ``panoptic_gt_VIPSeg.json``
  with ``videos`` (``video_id``, ``images``), ``annotations`` (``video_id``, ``annotations``)
  and ``categories`` (124 ids 0..123); PNGs in ``panomasksRGB/<video_id>/<file_name>``.
  Predictions: ``pred.json`` + ``pan_pred/<video_id>/<file_name>``.

`GT` / `PRED` may be the JSON file or a folder holding exactly one JSON; the PNG folder is
found next to it (the JSON's stem, ``panoptic_video``, ``val/panoptic_video``, ``pan_pred``,
``panomasksRGB``, ``panoptic``, or the folder itself: the first that holds the first frame).

Frames are also converted to STEP labels: semantic = category id (void where id 0 or an id
missing from ``segments_info``), instance = a per-sequence, per-category index of the segment id
for non-crowd things (stable over the video), 0 for stuff and crowd.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...io.formats import decode_coco_ids, encode_coco_ids, read_rgb_png, write_rgb_png
from ...types import Category, DatasetMeta
from .base import FormatError, FrameRef, LabelFrame, SequenceSet

__all__ = [
    "read_cityscapes_vps", "read_coco_panoptic", "read_vipseg", "step_to_coco",
    "write_cityscapes_vps", "write_coco_panoptic", "write_vipseg",
]

_PNG_DIRS = ("{stem}", "panoptic_video", "val/panoptic_video", "pan_pred", "panomasksRGB", "panoptic", ".")


def _find_json(path: Path, format: str) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise FormatError(f"{format}: {path} does not exist")
    found = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
    if len(found) != 1:
        raise FormatError(
            f"{format}: expected exactly one JSON file in {path}; found {len(found)} (pass the JSON file)"
        )
    return found[0]


def _load_json(path: Path, format: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FormatError(f"{format}: cannot read {path}: {err}") from None
    if not isinstance(data, dict) or "annotations" not in data:
        raise FormatError(f"{format}: {path} has no 'annotations' list")
    return data


def _png_dir(json_path: Path, first: tuple[str, ...], format: str) -> Path:
    """The folder next to the JSON that holds the first frame (under any of its candidate names)."""
    base = json_path.parent
    for pattern in _PNG_DIRS:
        cand = (base / pattern.format(stem=json_path.stem)).resolve()
        if cand.is_dir() and any((cand / rel).is_file() for rel in first):
            return cand
    raise FormatError(f"{format}: no PNG folder next to {json_path} holds {first[0]!r}")


def _existing(png_dir: Path, rels: tuple[str, ...]) -> Path:
    for rel in rels:
        if (png_dir / rel).is_file():
            return png_dir / rel
    return png_dir / rels[0]  # missing: the loader names it


def _rgb(values) -> tuple[int, int, int]:
    """The first three entries of a COCO ``color`` as an RGB triple."""
    r, g, b = (int(v) for v in tuple(values)[:3])
    return r, g, b


def _meta_from(data: dict, fallback: DatasetMeta | None, name: str) -> DatasetMeta | None:
    """The JSON's ``categories`` as a `DatasetMeta` (void 255, divisor 1000), else `fallback`."""
    cats = data.get("categories")
    if not cats:
        return fallback
    try:
        categories = tuple(
            Category(int(c["id"]), str(c.get("name", c["id"])), bool(c.get("isthing", 0)),
                     _rgb(c.get("color", (0, 0, 0))))
            for c in cats
        )
        return DatasetMeta(name=name, categories=categories, label_divisor=1000, void_id=255)
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{name}: bad 'categories' in the JSON: {err}") from None


class _InstanceIds:
    """Per-sequence map ``segment id -> instance index`` (per category, 1-based, stable)."""

    def __init__(self, label_divisor: int):
        self.ids: dict[int, int] = {}
        self.next: dict[int, int] = {}
        self.label_divisor = label_divisor

    def __call__(self, segment_id: int, category: int, where: str) -> int:
        got = self.ids.get(segment_id)
        if got is None:
            got = self.next.get(category, 0) + 1
            if got >= self.label_divisor:
                raise FormatError(f"{where}: more than {self.label_divisor - 1} instances of class {category}")
            self.next[category] = got
            self.ids[segment_id] = got
        return got


def coco_to_step(ids: np.ndarray, segments: Sequence[dict], meta: DatasetMeta, instances: _InstanceIds,
                 where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(semantic, instance)`` ``(H, W) int32`` STEP labels of one COCO-panoptic frame."""
    seg_ids = np.array([int(s["id"]) for s in segments], np.int64)
    cats = np.array([int(s["category_id"]) for s in segments], np.int64)
    try:
        thing = meta.is_thing(cats)
    except ValueError as err:
        raise FormatError(f"{where}: {err}") from None
    crowd = np.array([bool(s.get("iscrowd", 0)) for s in segments], bool)
    inst = np.array([instances(int(i), int(c), where) if t and not cr else 0
                     for i, c, t, cr in zip(seg_ids, cats, thing, crowd)], np.int64)
    order = np.argsort(seg_ids)
    pos = np.searchsorted(seg_ids[order], ids) if seg_ids.size else np.zeros(ids.shape, np.int64)
    pos = np.minimum(pos, max(seg_ids.size - 1, 0))
    known = (seg_ids[order][pos] == ids) if seg_ids.size else np.zeros(ids.shape, bool)
    row = order[pos]
    semantic = np.where(known, cats[row] if cats.size else 0, meta.void_id).astype(np.int32)
    instance = np.where(known, inst[row] if inst.size else 0, 0).astype(np.int32)
    return semantic, instance


def _frame_loader(png: Path, segments: list, meta: DatasetMeta, instances: _InstanceIds, strict: bool):
    def load() -> LabelFrame:
        try:
            ids = decode_coco_ids(read_rgb_png(png))
        except (OSError, ValueError) as err:
            raise FormatError(f"{png}: {err}") from None
        if strict:  # predictions: PNG and segments_info must list the same ids (panopticapi raises too)
            unique = np.unique(ids)
            present = set(unique[unique != 0].tolist())
            listed = {int(seg["id"]) for seg in segments}
            for extra, here, there in ((present - listed, "PNG", "JSON"), (listed - present, "JSON", "PNG")):
                if extra:
                    raise FormatError(
                        f"{png}: segment ids {sorted(extra)[:5]} are in the {here} but not in the {there}"
                    )
        semantic, instance = coco_to_step(ids, segments, meta, instances, str(png))
        return LabelFrame(semantic=semantic, instance=instance, coco=(ids, segments))

    return load


def _read(path, format: str, meta: DatasetMeta | None, default: DatasetMeta, frames_of, *,
          video: bool = True, prediction: bool = False) -> SequenceSet:
    """Shared reader: `frames_of(data)` yields ``(sequence, frame name, PNG paths to try, segments)``.

    Categories: `meta` when given, else the JSON's ``categories``, else `default`. With `video`,
    instance indices are kept per sequence (tracks); otherwise per frame (independent images).
    With `prediction`, ids in the PNG and in ``segments_info`` must agree (ground truth may
    hold unlisted ids: they are ignored, as in panopticapi).
    """
    json_path = _find_json(Path(path), format)
    data = _load_json(json_path, format)
    meta = meta or _meta_from(data, default, format)
    if meta is None:
        raise FormatError(f"{format}: {json_path} has no 'categories'; give the dataset")
    entries = list(frames_of(data, json_path))
    out = SequenceSet(format=format, root=json_path, meta=meta)
    if not entries:
        return out
    png_dir = _png_dir(json_path, entries[0][2], format)
    counters: dict[str, _InstanceIds] = {}
    for seq, name, rels, segments in entries:
        inst = counters.setdefault(seq if video else name, _InstanceIds(meta.label_divisor))
        png = _existing(png_dir, rels)
        load = _frame_loader(png, segments, meta, inst, prediction)
        out.sequences.setdefault(seq, []).append(FrameRef(name, load, str(png)))
    return out


def _names(file_name: str | None, image_id: str) -> tuple[str, ...]:
    """PNG names to try: the annotation's ``file_name``, then ``<image_id>.png`` (VPSNet's
    ``pan_pred/<image_id>.png``)."""
    names = [file_name] if file_name else []
    return tuple(dict.fromkeys(names + [f"{image_id}.png"]))


def read_coco_panoptic(path: str | os.PathLike, meta: DatasetMeta | None = None, *,
                       prediction: bool = False) -> SequenceSet:
    """COCO panoptic JSON + PNGs as one sequence ``"images"`` of frames named by ``image_id``."""

    def frames_of(data, json_path):
        for ann in data["annotations"]:
            image_id = str(ann["image_id"])
            yield "images", image_id, _names(ann.get("file_name"), image_id), ann["segments_info"]

    from ...datasets import COCO_PANOPTIC

    return _read(path, "coco", meta, COCO_PANOPTIC, frames_of, video=False, prediction=prediction)


def read_cityscapes_vps(path: str | os.PathLike, meta: DatasetMeta | None = None, *,
                        prediction: bool = False) -> SequenceSet:
    """Cityscapes-VPS JSON + PNGs; videos are the images sharing the first 4 characters of the id."""

    def frames_of(data, json_path):
        anns = sorted(data["annotations"], key=lambda a: str(a["image_id"]))
        for ann in anns:
            image_id = str(ann["image_id"])
            yield image_id[:4], image_id, _names(ann.get("file_name"), image_id), ann["segments_info"]

    from ...datasets import CITYSCAPES

    return _read(path, "cityscapes-vps", meta, CITYSCAPES, frames_of, prediction=prediction)


def read_vipseg(path: str | os.PathLike, meta: DatasetMeta | None = None, *,
                prediction: bool = False) -> SequenceSet:
    """VIPSeg video JSON + ``<video_id>/<file_name>`` PNGs; one sequence per video."""

    def frames_of(data, json_path):
        for video in data["annotations"]:
            vid = str(video["video_id"])
            for ann in video["annotations"]:
                image_id = str(ann["image_id"])
                names = _names(ann.get("file_name"), image_id)
                yield vid, image_id, tuple(f"{vid}/{n}" for n in names), ann["segments_info"]

    from ...datasets import VIPSEG

    return _read(path, "vipseg", meta, VIPSEG, frames_of, prediction=prediction)


# ----------------------------------------------------------------------------- writers
def step_to_coco(semantic: np.ndarray, instance: np.ndarray, meta: DatasetMeta, *, crowd: bool = True
                 ) -> tuple[np.ndarray, list[dict]]:
    """STEP labels → ``(ids (H, W) int64, segments_info)``; id ``semantic * divisor + instance + 1``.

    The id is a function of (class, instance), so a track keeps its id across frames. With
    `crowd`, thing pixels with instance 0 are one ``iscrowd = 1`` segment (ground truth).
    Segments carry ``id``, ``category_id``, ``iscrowd``, ``area`` and ``bbox`` ``[x, y, w, h]``.
    """
    semantic = np.asarray(semantic, np.int64)
    instance = np.asarray(instance, np.int64)
    valid = semantic != meta.void_id
    ids = np.where(valid, semantic * meta.label_divisor + instance + 1, 0)
    uniq, counts = np.unique(ids[valid], return_counts=True)
    segments = []
    for seg_id, area in zip(uniq.tolist(), counts.tolist()):
        cat, inst = divmod(seg_id - 1, meta.label_divisor)
        ys, xs = np.nonzero(ids == seg_id)
        segments.append({
            "id": int(seg_id), "category_id": int(cat),
            "iscrowd": int(crowd and inst == 0 and meta.category(cat).isthing),
            "area": int(area),
            "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
        })
    return ids, segments


def _categories(meta: DatasetMeta) -> list[dict]:
    return [{"id": c.id, "name": c.name, "isthing": int(c.isthing), "color": list(c.color)} for c in meta.categories]


def _write_png(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rgb_png(path, encode_coco_ids(ids))


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_coco_panoptic(root: str | os.PathLike, frames: Iterable[tuple], meta: DatasetMeta, *,
                        name: str = "panoptic", prediction: bool = False) -> Path:
    """Write ``root/<name>.json`` and ``root/<name>/<image_id>.png``.

    Args:
        frames: ``(image_id, semantic, instance)`` STEP frames.
        prediction: no ``iscrowd`` segments (ground truth: thing pixels with instance 0 are crowd).
    Returns: the JSON path.
    """
    root = Path(root)
    images, annotations = [], []
    for image_id, semantic, instance in frames:
        ids, segments = step_to_coco(semantic, instance, meta, crowd=not prediction)
        file_name = f"{image_id}.png"
        _write_png(root / name / file_name, ids)
        h, w = ids.shape
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        annotations.append({"image_id": image_id, "file_name": file_name, "segments_info": segments})
    path = root / f"{name}.json"
    _write_json(path, {"images": images, "annotations": annotations, "categories": _categories(meta)})
    return path


def write_cityscapes_vps(root: str | os.PathLike, sequences: Mapping[str, Iterable[tuple]], meta: DatasetMeta, *,
                         prediction: bool = False) -> Path:
    """Cityscapes-VPS layout: ground truth ``panoptic_gt_val_city_vps.json`` + ``panoptic_video/``,
    prediction ``pred.json`` + ``pan_pred/``. Image ids are ``<video:04d>_<frame:04d>_synth``.

    Args:
        sequences: ``video number (str of an int) -> [(semantic, instance), ...]``.
    """
    root = Path(root)
    if prediction:
        png_dir, json_name = "pan_pred", "pred.json"
    else:
        png_dir, json_name = "panoptic_video", "panoptic_gt_val_city_vps.json"
    images, annotations = [], []
    for video, frames in sequences.items():
        for f, (semantic, instance) in enumerate(frames):
            image_id = f"{int(video):04d}_{f:04d}_synth"
            ids, segments = step_to_coco(semantic, instance, meta, crowd=not prediction)
            file_name = f"{image_id}.png" if prediction else f"{image_id}_gtFine_color.png"
            _write_png(root / png_dir / file_name, ids)
            h, w = ids.shape
            images.append({"id": image_id, "width": w, "height": h, "file_name": f"{image_id}_leftImg8bit.png"})
            annotations.append({"image_id": image_id, "file_name": file_name, "segments_info": segments})
    path = root / json_name
    _write_json(path, {"images": images, "annotations": annotations, "categories": _categories(meta)})
    return path


def write_vipseg(root: str | os.PathLike, sequences: Mapping[str, Iterable[tuple]], meta: DatasetMeta, *,
                 prediction: bool = False) -> Path:
    """VIPSeg layout: ground truth ``panoptic_gt_VIPSeg.json`` + ``panomasksRGB/<video>/``,
    prediction ``pred.json`` + ``pan_pred/<video>/``; frames ``<index:08d>.png``."""
    root = Path(root)
    png_dir, json_name = ("pan_pred", "pred.json") if prediction else ("panomasksRGB", "panoptic_gt_VIPSeg.json")
    videos, annotations = [], []
    for video, frames in sequences.items():
        images, anns = [], []
        for f, (semantic, instance) in enumerate(frames):
            image_id = f"{f:08d}"
            ids, segments = step_to_coco(semantic, instance, meta, crowd=not prediction)
            _write_png(root / png_dir / video / f"{image_id}.png", ids)
            h, w = ids.shape
            images.append({"id": image_id, "width": w, "height": h, "file_name": f"{image_id}.png"})
            anns.append({"image_id": image_id, "file_name": f"{image_id}.png", "segments_info": segments})
        videos.append({"video_id": video, "images": images})
        annotations.append({"video_id": video, "annotations": anns})
    path = root / json_name
    _write_json(path, {"videos": videos, "annotations": annotations, "categories": _categories(meta)})
    return path
