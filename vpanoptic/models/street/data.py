"""Training data for StreetNet, drawn on the fly from the synthetic street world.

Every sample is a pure function of ``(seed, step, slot)``: a batch at step `s` renders
`worlds_per_batch` new worlds (random seed and scenario) at random times, so training is
reproducible from its seed, resumable at any step, and independent of the number of loader
workers. Augmentation imitates the inference path (area downscale of a 640x360 frame to the
network's input size, H.264-like JPEG artefacts) plus scale jitter, crops and flips.

Targets at the network's output stride (4):
    semantic ``(H, W)`` int64 class index (255 = ignore) at input size,
    center ``(h, w)`` float Gaussian heatmap (peak 1 at each thing's center of mass),
    offset ``(2, h, w)`` float (dy, dx) to the center in output pixels, weight ``(h, w)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ...synth.render import Renderer
from ...synth.world import SCENARIOS, World, resolve_scenario

__all__ = [
    "CLASS_IDS",
    "EVAL_SEED_RANGE",
    "IGNORE",
    "THING_IDS",
    "DataParams",
    "class_lut",
    "encode_targets",
    "make_batch",
    "render_sample",
]

# The classes of the synthetic world (Cityscapes train ids): road, sidewalk, building, pole,
# vegetation, sky, person, car. The network predicts their indices 0..7.
CLASS_IDS = (0, 1, 2, 5, 8, 10, 11, 13)
THING_IDS = (11, 13)
IGNORE = 255
STRIDE = 4
# World seeds at or above this value are used for training; smaller seeds are kept for
# validation and evaluation, so that no evaluated world was ever trained on.
EVAL_SEED_RANGE = 1_000_000
FRAME_SIZE = (640, 360)


def class_lut() -> np.ndarray:
    """``(256,) int64``: Cityscapes train id → class index (IGNORE elsewhere)."""
    lut = np.full(256, IGNORE, np.int64)
    lut[list(CLASS_IDS)] = np.arange(len(CLASS_IDS))
    return lut


@dataclass(frozen=True)
class DataParams:
    """How training samples are made.

    crop: (width, height) of the network input during training.
    scale: range of the downscale factor applied to the 640x360 frame before cropping.
    worlds_per_batch: distinct worlds rendered per batch (a world costs ~70 ms to build).
    crops_per_frame: augmented crops cut from each rendered frame (a frame costs ~25 ms).
    max_time: frames are sampled at uniform times in [0, max_time] seconds.
    sigma: standard deviation of the center Gaussian, in output pixels.
    jpeg_quality: range of JPEG qualities used as compression artefacts (0 disables).
    """

    crop: tuple[int, int] = (320, 192)
    scale: tuple[float, float] = (0.45, 0.8)
    worlds_per_batch: int = 1
    crops_per_frame: int = 2
    max_time: float = 40.0
    sigma: float = 2.0
    jpeg_quality: tuple[int, int] = (35, 95)
    scenarios: tuple[str, ...] = tuple(SCENARIOS)


def render_sample(world_seed: int, scenario: str, t: float, size: tuple[int, int] = FRAME_SIZE):
    """One frame of a world at time `t`: image ``(H, W, 3) uint8``, semantic / instance ``(H, W) int32``."""
    _, config = resolve_scenario(scenario)
    world = World(world_seed, config)
    renderer = Renderer(world_seed, world.kerbs, config.lanes_each_way, *size)
    return _render(world, renderer, t, size)


def _render(world, renderer, t: float, size):
    cam = world.camera(t, *size)
    return renderer.render(cam, world.statics(t), world.things(t), t)


def encode_targets(semantic: np.ndarray, instance: np.ndarray, sigma: float, lut: np.ndarray):
    """Targets of one crop.

    Args:
        semantic: ``(H, W)`` Cityscapes train ids; instance: ``(H, W)`` ids (0 = stuff).
    Returns:
        sem ``(H, W)`` int64 class index, center ``(h, w)`` float32, offset ``(2, h, w)`` float32,
        offset weight ``(h, w)`` float32 (1 on thing pixels), with ``h, w = ceil(H/4), ceil(W/4)``.
    """
    sem = lut[semantic]
    H, W = semantic.shape
    h, w = -(-H // STRIDE), -(-W // STRIDE)
    # Output cell (i, j) sees input pixel (4i + 1.5, 4j + 1.5); sample labels at its center.
    ys = np.minimum(np.arange(h) * STRIDE + STRIDE // 2, H - 1)
    xs = np.minimum(np.arange(w) * STRIDE + STRIDE // 2, W - 1)
    inst_lo = instance[np.ix_(ys, xs)]
    thing = np.isin(semantic, THING_IDS) & (instance > 0)
    center = np.zeros((h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = np.nonzero(thing)
    ids, inv = np.unique(instance[yy, xx], return_inverse=True)
    count = np.bincount(inv, minlength=len(ids))
    # centers of mass in output-grid coordinates (cell i covers input 4i .. 4i+3)
    cys = (np.bincount(inv, yy, len(ids)) / np.maximum(count, 1) + 0.5) / STRIDE - 0.5
    cxs = (np.bincount(inv, xx, len(ids)) / np.maximum(count, 1) + 0.5) / STRIDE - 0.5
    for cy, cx in zip(cys, cxs):
        y0, y1 = int(max(0, np.floor(cy - 3 * sigma))), int(min(h, np.ceil(cy + 3 * sigma) + 1))
        x0, x1 = int(max(0, np.floor(cx - 3 * sigma))), int(min(w, np.ceil(cx + 3 * sigma) + 1))
        if y0 < y1 and x0 < x1:
            g = np.exp(-((gy[y0:y1, x0:x1] - cy) ** 2 + (gx[y0:y1, x0:x1] - cx) ** 2) / (2 * sigma**2))
            np.maximum(center[y0:y1, x0:x1], g, out=center[y0:y1, x0:x1])
    lo_thing = np.isin(inst_lo, ids) & (inst_lo > 0)
    if lo_thing.any():
        k = np.searchsorted(ids, inst_lo[lo_thing])
        offset[0][lo_thing] = cys[k] - gy[lo_thing]
        offset[1][lo_thing] = cxs[k] - gx[lo_thing]
        weight[lo_thing] = 1.0
    return sem, center, offset, weight


def _augment(rng: np.random.Generator, image, semantic, instance, params: DataParams):
    s = rng.uniform(*params.scale)
    fw, fh = image.shape[1], image.shape[0]
    sw, sh = max(8, round(fw * s)), max(8, round(fh * s))
    image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    semantic = cv2.resize(semantic, (sw, sh), interpolation=cv2.INTER_NEAREST)
    instance = cv2.resize(instance, (sw, sh), interpolation=cv2.INTER_NEAREST)
    cw, ch = params.crop
    if sw < cw or sh < ch:  # pad with ignore / black
        pw, ph = max(0, cw - sw), max(0, ch - sh)
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        semantic = cv2.copyMakeBorder(semantic, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=IGNORE)
        instance = cv2.copyMakeBorder(instance, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=0)
        sh, sw = semantic.shape
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    image = image[y0:y0 + ch, x0:x0 + cw]
    semantic = semantic[y0:y0 + ch, x0:x0 + cw]
    instance = instance[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        image, semantic, instance = image[:, ::-1], semantic[:, ::-1], instance[:, ::-1]
    lo, hi = params.jpeg_quality
    if hi > 0 and rng.random() < 0.7:
        q = int(rng.integers(lo, hi + 1))
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert decoded is not None, "cv2 could not decode its own JPEG"
        image = decoded[..., ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(semantic), np.ascontiguousarray(instance)


def make_batch(seed: int, step: int, batch_size: int, params: DataParams) -> dict[str, torch.Tensor]:
    """The training batch of `step`: a pure function of ``(seed, step)``.

    Returns tensors: image ``(B, 3, H, W)`` uint8, sem ``(B, H, W)`` int64, center ``(B, 1, h, w)``,
    offset ``(B, 2, h, w)``, weight ``(B, 1, h, w)`` float32 (H, W = the crop).
    """
    rng = np.random.default_rng([seed, step])
    lut = class_lut()
    per_world = -(-batch_size // params.worlds_per_batch)
    out: dict[str, list] = {"image": [], "sem": [], "center": [], "offset": [], "weight": []}
    while len(out["image"]) < batch_size:
        world_seed = int(rng.integers(EVAL_SEED_RANGE, 2**31 - 1))
        scenario = params.scenarios[int(rng.integers(len(params.scenarios)))]
        _, config = resolve_scenario(scenario)
        world = World(world_seed, config)
        renderer = Renderer(world_seed, world.kerbs, config.lanes_each_way, *FRAME_SIZE)
        for j in range(min(per_world, batch_size - len(out["image"]))):
            if j % params.crops_per_frame == 0:
                t = float(rng.uniform(0, params.max_time))
                frame = _render(world, renderer, t, FRAME_SIZE)
            image, semantic, instance = _augment(rng, frame[0], frame[1], frame[2], params)
            sem, center, offset, weight = encode_targets(semantic, instance, params.sigma, lut)
            out["image"].append(torch.from_numpy(image).permute(2, 0, 1))
            out["sem"].append(torch.from_numpy(sem))
            out["center"].append(torch.from_numpy(center)[None])
            out["offset"].append(torch.from_numpy(offset))
            out["weight"].append(torch.from_numpy(weight)[None])
    return {k: torch.stack(v) for k, v in out.items()}
