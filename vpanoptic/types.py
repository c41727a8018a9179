"""The contracts between pipeline stages: `Frame`, `PanopticFrame` and `DatasetMeta`.

Every stage boundary carries exactly one of these validated types:

    Source ──Frame──▶ Model ──PanopticFrame──▶ Tracker ──PanopticFrame──▶ Sinks

A `PanopticFrame` stores an id map ``(H, W) int32`` (0 = void) and one entry per segment in
a struct of arrays (segment id, category id, is_thing, score, track id). Track id -1 means
"no track" (stuff, or a thing the tracker has not assigned).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    import supervision

INSTALL_SUPERVISION = "pip install 'vpanoptic[supervision]'"

ArrayLike = np.ndarray | torch.Tensor

__all__ = ["Category", "DatasetMeta", "Frame", "PanopticFrame"]


@dataclass(frozen=True)
class Category:
    """One semantic class. `id` is the dataset's own id (Cityscapes train id, COCO id, ...)."""

    id: int
    name: str
    isthing: bool
    color: tuple[int, int, int]

    def __post_init__(self):
        if self.id < 0:
            raise ValueError(f"category id is {self.id}; expected >= 0")
        if len(self.color) != 3 or not all(0 <= int(c) <= 255 for c in self.color):
            raise ValueError(f"category {self.name!r} colour {self.color}; expected 3 values in 0..255")


@dataclass(frozen=True)
class DatasetMeta:
    """Dataset metadata: categories, thing/stuff split, colours, label divisor and void label.

    `label_divisor` is the deeplab2 convention: panoptic label = category * divisor + instance.
    `void_id` is the semantic value that marks unlabelled pixels in STEP-style PNGs (255).
    """

    name: str
    categories: tuple[Category, ...]
    label_divisor: int = 1000
    void_id: int = 255
    # Lookup tables built by __post_init__ (not arguments).
    _is_thing: np.ndarray = field(init=False, repr=False, compare=False)
    _known: np.ndarray = field(init=False, repr=False, compare=False)
    _colors: np.ndarray = field(init=False, repr=False, compare=False)
    _by_id: dict[int, Category] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        ids = [c.id for c in self.categories]
        if len(set(ids)) != len(ids):
            raise ValueError(f"dataset {self.name!r} has duplicate category ids")
        if self.void_id in ids:
            raise ValueError(f"dataset {self.name!r}: void id {self.void_id} is also a category id")
        if self.label_divisor <= 0:
            raise ValueError(f"label_divisor is {self.label_divisor}; expected > 0")
        # Lookup tables, built once (frozen dataclass: set through object.__setattr__).
        n = max(ids + [self.void_id]) + 1
        is_thing = np.zeros(n, dtype=bool)
        known = np.zeros(n, dtype=bool)
        colors = np.zeros((n, 3), dtype=np.uint8)
        for c in self.categories:
            is_thing[c.id] = c.isthing
            known[c.id] = True
            colors[c.id] = c.color
        object.__setattr__(self, "_is_thing", is_thing)
        object.__setattr__(self, "_known", known)
        object.__setattr__(self, "_colors", colors)
        object.__setattr__(self, "_by_id", {c.id: c for c in self.categories})

    @property
    def thing_ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.categories if c.isthing)

    @property
    def stuff_ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.categories if not c.isthing)

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def category(self, category_id: int) -> Category:
        try:
            return self._by_id[int(category_id)]
        except KeyError:
            raise KeyError(f"category id {category_id} is not in dataset {self.name!r}") from None

    def is_thing(self, category_ids: ArrayLike) -> np.ndarray:
        """Vectorised thing lookup: ``(N,) int`` → ``(N,) bool``. Unknown ids raise."""
        ids = np.asarray(category_ids, dtype=np.int64)
        self.check_ids(ids)
        return self._is_thing[ids]

    def colors(self, category_ids: ArrayLike) -> np.ndarray:
        """``(N,) int`` category ids → ``(N, 3) uint8`` RGB colours."""
        ids = np.asarray(category_ids, dtype=np.int64)
        self.check_ids(ids)
        return self._colors[ids]

    def check_ids(self, category_ids: np.ndarray) -> None:
        ids = np.asarray(category_ids)
        if ids.size == 0:
            return
        bad = (ids < 0) | (ids >= len(self._known))
        if not bad.any():
            bad = ~self._known[ids]
        if bad.any():
            raise ValueError(
                f"category ids {sorted(set(ids[bad].tolist()))} are not in dataset {self.name!r}"
            )


@dataclass
class Frame:
    """One decoded video frame.

    Attributes:
        index: 0-based position in the source (counts every decoded frame, dropped or not).
        pts: presentation timestamp in stream time-base units, or None if the container has none.
        time: seconds since the start of the stream (``pts * time_base``), the clock of tracks.
        capture_time: ``time.monotonic()`` when the frame left the decoder/camera; end-to-end
            latency is measured from it.
        image: ``(H, W, 3) uint8`` RGB, C-contiguous.
    """

    index: int
    pts: int | None
    time: float
    capture_time: float
    image: np.ndarray

    def __post_init__(self):
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", type(img).__name__)
            raise ValueError(f"Frame.image must be (H, W, 3) uint8 RGB; got shape {shape} dtype {dtype}")
        if self.index < 0:
            raise ValueError(f"Frame.index is {self.index}; expected >= 0")

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


def _as_1d(values, dtype, n: int | None, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype).reshape(-1)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"PanopticFrame.{name} has {arr.shape[0]} entries; expected {n}")
    return arr


@dataclass
class PanopticFrame:
    """Panoptic result for one frame, as a struct of arrays over its N segments.

    Attributes:
        frame: the input `Frame`.
        id_map: ``(H, W) int32`` segment id per pixel, 0 = void. A `torch.Tensor` on the model's
            device until the sink boundary (`to_numpy()`), or a NumPy array.
        segment_ids: ``(N,) int32``, > 0 and unique; the values found in `id_map`.
        category_ids: ``(N,) int32``, ids of `meta.categories`.
        is_thing: ``(N,) bool``, derived from `meta` when not given.
        scores: ``(N,) float32`` in [0, 1]; 1 for ground truth.
        track_ids: ``(N,) int32``, > 0 for tracked things, -1 for stuff / not tracked.
        meta: the dataset metadata of `category_ids`.
        timings: per-stage seconds spent on this frame, filled in by the pipeline.
    """

    frame: Frame
    id_map: ArrayLike
    segment_ids: np.ndarray
    category_ids: np.ndarray
    meta: DatasetMeta
    # None (the default) is filled in by __post_init__: the attributes are always arrays.
    is_thing: np.ndarray = None  # type: ignore[assignment]
    scores: np.ndarray = None  # type: ignore[assignment]
    track_ids: np.ndarray = None  # type: ignore[assignment]
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.segment_ids = _as_1d(self.segment_ids, np.int32, None, "segment_ids")
        n = self.segment_ids.shape[0]
        self.category_ids = _as_1d(self.category_ids, np.int32, n, "category_ids")
        self.meta.check_ids(self.category_ids)
        if self.is_thing is None:
            self.is_thing = self.meta.is_thing(self.category_ids)
        else:
            self.is_thing = _as_1d(self.is_thing, bool, n, "is_thing")
        self.scores = (
            np.ones(n, np.float32) if self.scores is None else _as_1d(self.scores, np.float32, n, "scores")
        )
        self.track_ids = (
            np.full(n, -1, np.int32) if self.track_ids is None else _as_1d(self.track_ids, np.int32, n, "track_ids")
        )
        if n and (self.segment_ids.min() <= 0 or np.unique(self.segment_ids).shape[0] != n):
            raise ValueError("PanopticFrame.segment_ids must be unique and > 0")
        shape = tuple(self.id_map.shape)
        if shape != self.frame.image.shape[:2]:
            raise ValueError(f"PanopticFrame.id_map shape {shape} != frame size {self.frame.image.shape[:2]}")
        dtype = self.id_map.dtype
        if dtype not in (np.int32, torch.int32):
            raise ValueError(f"PanopticFrame.id_map dtype is {dtype}; expected int32")

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.segment_ids.shape[0])

    @property
    def height(self) -> int:
        return self.frame.height

    @property
    def width(self) -> int:
        return self.frame.width

    @property
    def on_device(self) -> bool:
        return isinstance(self.id_map, torch.Tensor)

    def to_numpy(self) -> PanopticFrame:
        """The one device → host move at the sink boundary. No-op for NumPy id maps."""
        if not isinstance(self.id_map, torch.Tensor):
            return self
        return replace(self, id_map=self.id_map.detach().cpu().numpy())

    def id_map_numpy(self) -> np.ndarray:
        if isinstance(self.id_map, torch.Tensor):
            return self.id_map.detach().cpu().numpy()
        return self.id_map

    def validate(self) -> None:
        """Full O(pixels) check that `id_map` only holds listed segment ids (tests, debugging)."""
        present = np.unique(self.id_map_numpy())
        present = present[present != 0]
        missing = np.setdiff1d(present, self.segment_ids)
        if missing.size:
            raise ValueError(f"id_map holds segment ids {missing.tolist()} with no segment entry")

    # ------------------------------------------------------------- selection
    def __getitem__(self, index) -> PanopticFrame:
        """NumPy-style selection of segments (boolean mask, index array or slice), in order.

        Pixels of segments that are not kept become void (0) in the returned id map.
        """
        idx = np.arange(len(self))[index]
        if idx.ndim != 1 or np.unique(idx).shape[0] != idx.shape[0]:
            raise IndexError("PanopticFrame selection must pick each segment at most once")
        if idx.shape[0] == len(self) and (idx == np.arange(len(self))).all():
            return replace(self, timings=dict(self.timings))
        kept_ids = self.segment_ids[idx]
        lut_size = int(self.segment_ids.max()) + 1 if len(self) else 1
        id_map: ArrayLike
        if isinstance(self.id_map, torch.Tensor):
            lut = torch.zeros(lut_size, dtype=torch.int32, device=self.id_map.device)
            kept = torch.as_tensor(kept_ids, dtype=torch.long, device=self.id_map.device)
            lut[kept] = kept.to(torch.int32)
            id_map = lut[self.id_map.long()]
        else:
            lut_np = np.zeros(lut_size, dtype=np.int32)
            lut_np[kept_ids] = kept_ids
            id_map = lut_np[self.id_map]
        return PanopticFrame(
            frame=self.frame,
            id_map=id_map,
            segment_ids=self.segment_ids[idx],
            category_ids=self.category_ids[idx],
            meta=self.meta,
            is_thing=self.is_thing[idx],
            scores=self.scores[idx],
            track_ids=self.track_ids[idx],
            timings=dict(self.timings),
        )

    # ------------------------------------------------------- label conversions
    @classmethod
    def from_labels(
        cls,
        frame: Frame,
        semantic: np.ndarray,
        instance: np.ndarray,
        meta: DatasetMeta,
        scores: Sequence[float] | None = None,
    ) -> PanopticFrame:
        """Build a frame from STEP-style labels.

        Args:
            semantic: ``(H, W)`` integer category ids; `meta.void_id` marks void.
            instance: ``(H, W)`` integer instance ids, 0 for stuff and crowd.
        Each distinct (category, instance) pair becomes one segment; segments are numbered
        1..N in order of their panoptic label. Instance ids of things are kept as track ids.
        A thing class with instance 0 is crowd (KITTI-STEP): its segment is not a thing
        (``is_thing`` False), so no tracker gives it an id and it is written back as instance 0.
        """
        semantic = np.asarray(semantic).astype(np.int64, copy=False)
        instance = np.asarray(instance).astype(np.int64, copy=False)
        if semantic.shape != instance.shape:
            raise ValueError(f"semantic {semantic.shape} and instance {instance.shape} shapes differ")
        valid = semantic != meta.void_id
        meta.check_ids(np.unique(semantic[valid]))
        label = semantic * (int(instance.max(initial=0)) + 1) + instance
        label[~valid] = -1
        uniq, inverse = np.unique(label, return_inverse=True)
        inverse = inverse.reshape(label.shape)
        has_void = uniq.size > 0 and uniq[0] == -1
        seg_labels = uniq[1:] if has_void else uniq
        id_map = (inverse + (0 if has_void else 1)).astype(np.int32)
        id_map[~valid] = 0
        width = int(instance.max(initial=0)) + 1
        cats = (seg_labels // width).astype(np.int32)
        inst = (seg_labels % width).astype(np.int32)
        is_thing = meta.is_thing(cats) & (inst > 0)  # crowd (instance 0) is not an instance
        track_ids = np.where(is_thing, inst, -1).astype(np.int32)
        return cls(
            frame=frame,
            id_map=id_map,
            segment_ids=np.arange(1, seg_labels.size + 1, dtype=np.int32),
            category_ids=cats,
            meta=meta,
            is_thing=is_thing,
            scores=np.ones(len(cats), np.float32) if scores is None else np.asarray(scores, dtype=np.float32),
            track_ids=track_ids,
        )

    def to_labels(self, instances: str = "track") -> tuple[np.ndarray, np.ndarray]:
        """STEP-style labels ``(semantic, instance)``, both ``(H, W) int32``.

        Void pixels get `meta.void_id`; stuff gets instance 0. For things, `instances="track"`
        writes the track id (0 where untracked), `instances="segment"` the per-frame segment id.
        """
        if instances not in ("track", "segment"):
            raise ValueError(f"instances is {instances!r}; expected 'track' or 'segment'")
        id_map = self.id_map_numpy()
        size = int(self.segment_ids.max()) + 1 if len(self) else 1
        sem_lut = np.full(size, self.meta.void_id, dtype=np.int32)
        sem_lut[self.segment_ids] = self.category_ids
        inst_lut = np.zeros(size, dtype=np.int32)
        if instances == "track":
            inst = np.where(self.is_thing & (self.track_ids > 0), self.track_ids, 0)
        else:
            inst = np.where(self.is_thing, self.segment_ids, 0)
        inst_lut[self.segment_ids] = inst
        return sem_lut[id_map], inst_lut[id_map]

    def to_supervision(self, stuff: bool = False) -> supervision.Detections:
        """The segments as a `supervision.Detections`, for supervision's annotators and tools.

        Things only by default (stuff has no box worth drawing); ``stuff=True`` keeps every
        segment. For the K segments kept, in order:

        - ``mask``: ``(K, H, W) bool``; ``xyxy``: ``(K, 4) float32`` pixel bounds of each mask
          (supervision's inclusive convention; all zeros for an empty mask);
        - ``class_id``: ``(K,) int`` category ids of `meta`; ``confidence``: ``(K,) float32``;
        - ``tracker_id``: ``(K,) int`` track ids (-1: stuff, or a thing not tracked);
        - ``data``: ``class_name`` ``(K,) str`` (what `sv.LabelAnnotator` writes),
          ``segment_id`` ``(K,) int32``, ``is_thing`` ``(K,) bool``.

        Needs the optional extra: ``pip install 'vpanoptic[supervision]'``.
        """
        try:
            import supervision as sv
        except ModuleNotFoundError:
            raise ImportError(f"to_supervision() needs supervision: {INSTALL_SUPERVISION}") from None
        kept = self if stuff else self[self.is_thing]
        id_map = kept.id_map_numpy()
        masks = id_map[None, :, :] == kept.segment_ids[:, None, None]  # [K, H, W]
        data: dict[str, Any] = {
            "class_name": np.array([self.meta.category(c).name for c in kept.category_ids], dtype=str),
            "segment_id": kept.segment_ids.copy(),
            "is_thing": kept.is_thing.copy(),
        }
        return sv.Detections(
            xyxy=sv.mask_to_xyxy(masks).astype(np.float32).reshape(-1, 4),
            mask=masks,
            confidence=kept.scores.copy(),
            class_id=kept.category_ids.astype(int),
            tracker_id=kept.track_ids.astype(int),
            data=data,
        )

    def segments(self) -> Iterable[dict]:
        """Per-segment records (id, category, is_thing, score, track id); no pixel statistics."""
        for i in range(len(self)):
            yield {
                "id": int(self.segment_ids[i]),
                "category_id": int(self.category_ids[i]),
                "isthing": bool(self.is_thing[i]),
                "score": float(self.scores[i]),
                "track_id": int(self.track_ids[i]),
            }
