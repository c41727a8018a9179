"""Label image codecs: KITTI-STEP / MOTChallenge-STEP PNG and COCO-panoptic PNG.

KITTI-STEP PNG (RGB): R = semantic id (255 void), G * 256 + B = instance id (0 for stuff,
crowd or void). COCO panoptic PNG (RGB): segment id = R + 256 * G + 256² * B, 0 = void.
PNGs are written with OpenCV (BGR order on disk is handled here).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "encode_kitti_step",
    "decode_kitti_step",
    "read_kitti_step",
    "write_kitti_step",
    "encode_coco_ids",
    "decode_coco_ids",
    "read_rgb_png",
    "write_rgb_png",
]


def encode_kitti_step(semantic: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """``(H, W)`` semantic in 0..255 and instance in 0..65535 → ``(H, W, 3) uint8`` RGB."""
    semantic = np.asarray(semantic)
    instance = np.asarray(instance)
    if semantic.shape != instance.shape or semantic.ndim != 2:
        raise ValueError(f"semantic {semantic.shape} and instance {instance.shape} must be equal (H, W)")
    if semantic.size and (semantic.min() < 0 or semantic.max() > 255):
        raise ValueError("KITTI-STEP semantic ids must be in 0..255")
    if instance.size and (instance.min() < 0 or instance.max() > 65535):
        raise ValueError("KITTI-STEP instance ids must be in 0..65535")
    rgb = np.empty(semantic.shape + (3,), dtype=np.uint8)
    rgb[..., 0] = semantic
    rgb[..., 1] = instance >> 8
    rgb[..., 2] = instance & 255
    return rgb


def decode_kitti_step(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3) uint8`` RGB → (semantic, instance), both ``(H, W) int32``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB label image; got shape {rgb.shape}")
    semantic = rgb[..., 0].astype(np.int32)
    instance = rgb[..., 1].astype(np.int32) * 256 + rgb[..., 2].astype(np.int32)
    return semantic, instance


def encode_coco_ids(ids: np.ndarray) -> np.ndarray:
    """``(H, W)`` segment ids in 0..2²⁴-1 → ``(H, W, 3) uint8`` RGB (panopticapi id2rgb)."""
    ids = np.asarray(ids).astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= 1 << 24):
        raise ValueError("COCO panoptic segment ids must be in 0..16777215")
    rgb = np.empty(ids.shape + (3,), dtype=np.uint8)
    rgb[..., 0] = ids & 255
    rgb[..., 1] = (ids >> 8) & 255
    rgb[..., 2] = (ids >> 16) & 255
    return rgb


def decode_coco_ids(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB → ``(H, W) int32`` segment ids (panopticapi rgb2id)."""
    rgb = np.asarray(rgb).astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def read_rgb_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG as ``(H, W, 3) uint8`` RGB; raises FileNotFoundError / ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"not a readable image: {path}")
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit RGB image; got shape {img.shape} dtype {img.dtype}")
    return np.ascontiguousarray(img[..., 2::-1])


def write_rgb_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write ``(H, W, 3) uint8`` RGB to PNG atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError(f"could not encode {path} as PNG: {rgb.shape} {rgb.dtype}")
    try:  # Python's write, not cv2.imwrite: that one leaves an empty file and says True on a full disk
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_kitti_step(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI-STEP PNG → (semantic, instance), both ``(H, W) int32``."""
    return decode_kitti_step(read_rgb_png(path))


def write_kitti_step(path: str | os.PathLike, semantic: np.ndarray, instance: np.ndarray) -> None:
    write_rgb_png(path, encode_kitti_step(semantic, instance))
