"""Device-parametrised checks shared by the CUDA tests and their CPU counterparts.

Every function takes the device as an argument, so the same code runs in CI on the CPU
(`test_device_checks.py`) and on a GPU (`test_cuda_models.py`, ``pytest -m cuda``).

Tolerances (fp32, TF32 off): two runs of one network give the same panoptic output when,
over the pixels of all compared frames, at least `Tolerance.semantic` get the same category
and at least `Tolerance.segments` lie in segments matched one-to-one (same category,
IoU > 0.5) or are void in both:

- `FP32` (StreetNet, trained weights): 0.99 and 0.98.
- `FP32_RANDOM` (the other families, random weights): 0.99 and 0.90. Random weights leave
  near ties: where two queries of one class have almost the same score x probability, a
  rounding difference moves pixels from one to the other. Two convolution layouts on the
  CPU (`test_device_checks.py`) move up to 9 % of the pixels between DETR segments this way,
  never a pixel's category.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))  # tiny networks of the model tests

from model_helpers import check_contract, frames, tiny_hf_network, tiny_panoptic_fpn  # noqa: E402

from vpanoptic.models.base import PanopticModel  # noqa: E402
from vpanoptic.models.hub.preprocess import FastPath  # noqa: E402
from vpanoptic.models.hub.zoo import SPECS  # noqa: E402
from vpanoptic.types import Frame, PanopticFrame  # noqa: E402

# family → registry entry whose metadata (labels, thresholds) the tiny network uses
FAMILIES = {
    "streetnet": "vpanoptic-street",
    "detr": "detr-r50-panoptic",
    "mask2former": "mask2former-swin-t-cityscapes",
    "maskrcnn": "maskrcnn-v2-coco",
    "maskrcnn-semantic": "maskrcnn-v2-semfpn-coco",
}


# Random weights give scores near 0 and mask probabilities near 0.5, so the published
# thresholds would keep nothing, or decide pixels on rounding. Query models keep every query
# and give each pixel to the query of highest score x probability (DETR's rule has no mask or
# overlap threshold: every pixel goes to the kept query of highest mask logit); Mask R-CNN
# keeps every detection, its mask being the pasted box (probability > 0.05; 0 outside the box).
QUERY_THRESHOLDS = {
    "detr": {"score_threshold": 0.0},
    "mask2former": {"score_threshold": 0.0, "mask_threshold": 0.0, "overlap_threshold": 0.0},
}
MASKRCNN_THRESHOLDS = {"score_threshold": 0.0, "mask_threshold": 0.05, "stuff_area_threshold": 1}


@dataclass(frozen=True)
class Tolerance:
    """Least fraction of pixels that must agree (see `Agreement`)."""

    semantic: float
    segments: float


FP32 = Tolerance(semantic=0.99, segments=0.98)
FP32_RANDOM = Tolerance(semantic=0.99, segments=0.90)


def fp32_tolerance(family: str) -> Tolerance:
    return FP32 if family == "streetnet" else FP32_RANDOM


@dataclass(frozen=True)
class Agreement:
    """How far two panoptic results of one frame agree.

    semantic: fraction of pixels with the same category (void counts as a category).
    segments: fraction of pixels inside a one-to-one matched pair of segments (same
        category, IoU > 0.5), or void in both.
    counts: number of segments in each result.
    """

    semantic: float
    segments: float
    counts: tuple[int, int]

    def within(self, tol: Tolerance) -> bool:
        return self.semantic >= tol.semantic and self.segments >= tol.segments


def category_map(pf: PanopticFrame) -> np.ndarray:
    """``(H, W) int64`` category id per pixel, -1 for void."""
    ids = pf.id_map_numpy().astype(np.int64)
    lut = np.full(int(max(pf.segment_ids.max(initial=0), ids.max(initial=0))) + 1, -1, np.int64)
    lut[pf.segment_ids] = pf.category_ids
    return lut[ids]


def compare_panoptic(a: PanopticFrame, b: PanopticFrame) -> Agreement:
    """Pixel-level agreement of two results for the same frame (id maps on any device)."""
    ida, idb = a.id_map_numpy().astype(np.int64), b.id_map_numpy().astype(np.int64)
    if ida.shape != idb.shape:
        raise ValueError(f"id maps of different sizes: {ida.shape} and {idb.shape}")
    ca, cb = category_map(a), category_map(b)
    total = ida.size
    semantic = float((ca == cb).mean())
    # joint histogram of (segment in a, segment in b) over the pixels
    base = int(idb.max(initial=0)) + 1
    pairs, inter = np.unique(ida * base + idb, return_counts=True)
    sa, sb = pairs // base, pairs % base
    area_a = dict(zip(*np.unique(ida, return_counts=True)))
    area_b = dict(zip(*np.unique(idb, return_counts=True)))
    cat_a = dict(zip(a.segment_ids.tolist(), a.category_ids.tolist()))
    cat_b = dict(zip(b.segment_ids.tolist(), b.category_ids.tolist()))
    agree = 0
    for i, j, n in zip(sa.tolist(), sb.tolist(), inter.tolist()):
        if i == 0 or j == 0:
            agree += n if i == j else 0
            continue
        iou = n / (area_a[i] + area_b[j] - n)
        if iou > 0.5 and cat_a[i] == cat_b[j]:  # IoU > 0.5 makes the match unique
            agree += n
    return Agreement(semantic, agree / total, (len(a), len(b)))


def assert_same_panoptic(a: Sequence[PanopticFrame], b: Sequence[PanopticFrame], tol: Tolerance = FP32) -> Agreement:
    """`a` and `b` (results for the same frames) agree within `tol` over all their pixels.

    Returns the pooled agreement (counts: segments summed over the frames).
    """
    assert len(a) == len(b) > 0, (len(a), len(b))
    per_frame, pixels = [], []
    for pa, pb in zip(a, b):
        assert pa.frame.index == pb.frame.index, (pa.frame.index, pb.frame.index)
        per_frame.append(compare_panoptic(pa, pb))
        pixels.append(pa.height * pa.width)
    w = np.asarray(pixels, np.float64) / sum(pixels)
    pooled = Agreement(
        float(np.dot(w, [g.semantic for g in per_frame])),
        float(np.dot(w, [g.segments for g in per_frame])),
        (sum(g.counts[0] for g in per_frame), sum(g.counts[1] for g in per_frame)),
    )
    assert pooled.within(tol), f"{pooled} below {tol}; per frame: {per_frame}"
    return pooled


# ---------------------------------------------------------------------------- models
def family_frames(family: str, n: int = 2, size: tuple[int, int] | None = None) -> list[Frame]:
    """Frames for `family`: synthetic street frames for StreetNet, noise otherwise (192x128).

    `size` is ``(width, height)``. StreetNet's frames default to its network input, 384x216:
    its CPU path resizes with OpenCV (uint8), its CUDA path with torch (float), so at another
    size the devices would not see the same input.
    """
    if family == "streetnet":
        from vpanoptic.synth import generate

        return [Frame(f.index, f.index, f.time, 0.0, f.image) for f in generate(4242, n, size or (384, 216))]
    w, h = size or (192, 128)
    return frames(n, h, w)


def build_network(family: str, seed: int = 0) -> torch.nn.Module | None:
    """The tiny random network of `family` (on the CPU); None for StreetNet (bundled weights)."""
    if family == "streetnet":
        return None
    spec = SPECS[FAMILIES[family]]
    if spec.family in ("detr", "mask2former"):
        return tiny_hf_network(spec, seed=seed)
    return tiny_panoptic_fpn(spec, seed=seed)


def build_family(
    family: str,
    device: str | torch.device,
    *,
    fast: FastPath | None = None,
    net: torch.nn.Module | None = None,
) -> PanopticModel:
    """A model of `family` on `device` with the fast-path options `fast` (None: the defaults).

    `net` (from `build_network`) is deep-copied, so one set of random weights can be moved
    to several devices. StreetNet has its bundled weights; its only autocast is fp16 on CUDA
    (``amp``), so bf16 is refused for it.
    """
    device = torch.device(device)
    fast = fast or FastPath()
    if family == "streetnet":
        from vpanoptic.models.registry import build_model

        if fast.autocast == "bf16" or fast.compile:
            raise ValueError("StreetNet's model options have no bf16 autocast or compile on this path")
        return build_model("vpanoptic-street", device=device, amp=fast.autocast == "fp16",
                           channels_last=fast.channels_last)
    spec = SPECS[FAMILIES[family]]
    net = copy.deepcopy(net if net is not None else build_network(family))
    if spec.family in ("detr", "mask2former"):
        from vpanoptic.models.hub.hf import QueryPanopticModel

        return QueryPanopticModel(spec, net, device=device, fast=fast, short_side=64,
                                  **QUERY_THRESHOLDS[spec.family])
    from vpanoptic.models.hub.maskrcnn import MaskRCNNPanopticModel

    return MaskRCNNPanopticModel(spec, net, device=device, fast=fast, **MASKRCNN_THRESHOLDS)


def check_valid(pfs: Sequence[PanopticFrame], model: PanopticModel, family: str) -> None:
    """Each result keeps the output contract, with its id map on the model's device."""
    for pf in pfs:
        check_contract(pf, model.meta, things_only=family == "maskrcnn", device=model.device.type)
        assert len(pf) > 0  # a result with no segment would hide a broken path


class exact_fp32:
    """Context: true fp32 matrix products and convolutions on CUDA (TF32 off), restored on exit."""

    def __enter__(self):
        self._saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return self

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._saved
        return False


# ----------------------------------------------------------------- host copies
@dataclass(frozen=True)
class Copy:
    """One memory copy the CUDA profiler recorded.

    kind: "DtoH", "HtoD", "DtoD", ...; bytes: its size (None if not recorded); name: the
    profiler's name; within: the library operator it ran inside (see `memcpy_events`), or None.
    """

    kind: str
    bytes: int | None
    name: str
    within: str | None = None


# Library operators that copy to the host by design: torchvision's CUDA NMS reads its
# (boxes x boxes/64) suppression mask on the host. They are not the model stage's copies.
LIBRARY_COPIES = ("torchvision::nms",)


def memcpy_events(trace: dict, library_ops: Sequence[str] = LIBRARY_COPIES) -> list[Copy]:
    """The memory copies of a Chrome trace written by ``torch.profiler`` (``gpu_memcpy`` events).

    Their names read like "Memcpy DtoH (Device -> Pageable)"; ``args.bytes`` holds the size.
    A copy whose launch (the ``cuda_runtime`` event of the same ``correlation``) falls inside
    a CPU operator named in `library_ops` (same thread) gets that name in `Copy.within`.
    """
    events = trace.get("traceEvents", [])
    launches = {
        (ev.get("args") or {}).get("correlation"): ev
        for ev in events
        if ev.get("cat") == "cuda_runtime" and (ev.get("args") or {}).get("correlation") is not None
    }
    ops = [ev for ev in events if ev.get("cat") == "cpu_op" and ev.get("name") in library_ops]

    def enclosing(launch: dict | None) -> str | None:
        if launch is None:
            return None
        t = float(launch.get("ts", 0))
        for op in ops:
            start = float(op.get("ts", 0))
            if op.get("tid") == launch.get("tid") and start <= t <= start + float(op.get("dur", 0)):
                return str(op["name"])
        return None

    out = []
    for ev in events:
        if ev.get("cat") != "gpu_memcpy":
            continue
        name = str(ev.get("name", ""))
        parts = name.split()
        kind = parts[1] if len(parts) > 1 and parts[0] == "Memcpy" else "unknown"
        args = ev.get("args") or {}
        size = None if args.get("bytes") is None else int(args["bytes"])
        out.append(Copy(kind, size, name, enclosing(launches.get(args.get("correlation")))))
    return out


def profile_copies(fn: Callable[[], object], device: str | torch.device) -> tuple[object, list[Copy]]:
    """Run `fn()` under the torch profiler; returns its result and the device memory copies.

    On the CPU there is no device memory, so the list is empty (the profiler still runs, so
    this path is exercised in CI).
    """
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        trace = json.loads(path.read_text())
    return result, memcpy_events(trace)


def host_copy_budget(pf: PanopticFrame) -> int:
    """Largest device → host copy (bytes) allowed inside the model stage: 1/16 of the id map.

    The id map and every mask stay on the device; what crosses is the segment table (a few
    numbers per segment) and counts of selected elements.
    """
    return pf.height * pf.width * 4 // 16


# ------------------------------------------------------------------- pipeline
def run_pipeline(model: PanopticModel, tmp: Path, *, frames: int = 6, batch_size: int = 1,
                 size: tuple[int, int] = (320, 180)) -> dict:
    """A synthetic clip through `run_video` (decode → `model` → tracker → video, PNG, JSONL sinks).

    Returns the run's summary; the outputs are written under `tmp`.
    """
    from vpanoptic.config import load_config
    from vpanoptic.job import run_video
    from vpanoptic.synth import write_sequence

    write_sequence(tmp / "clip", seed=3, frames=frames, size=size, fps=10.0)
    cfg = load_config(None, [f"model.device={model.device}", f"model.batch_size={batch_size}",
                             "output.save=video,png,jsonl"])
    return run_video(str(tmp / "clip" / "video.mp4"), tmp / "out", cfg, model=model)


def check_pipeline_outputs(summary: dict, tmp: Path, frames: int) -> None:
    """The run processed every frame on the model's device and wrote every output."""
    assert summary["status"] == "ok" and summary["frames"] == frames, summary
    assert summary["outputs"] == ["panoptic_kitti", "segments.jsonl", "video.mp4"], summary["outputs"]
    out = tmp / "out"
    with av.open(str(out / "video.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames
    lines = [json.loads(line) for line in (out / "segments.jsonl").read_text().splitlines() if line.strip()]
    assert [line["frame"] for line in lines] == list(range(frames)), [line.get("frame") for line in lines]
    assert len(list((out / "panoptic_kitti").glob("*.png"))) == frames
