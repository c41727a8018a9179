"""Shared input path of the network models: host buffer → device → resize → normalise → pad.

The fast path, identical on CPU and GPU (only the pinned buffer is CUDA-specific):

1. `FrameUploader` copies the frames of a batch into one reused host buffer
   ``(B, H, W, 3) uint8`` (page-locked on CUDA) and uploads it with ``non_blocking=True``;
   only uint8 crosses the bus (4x less than float).
2. `prepare_batch` converts to float, resizes (shorter side / longer side limits),
   normalises with the model's mean/std and pads to the network's stride, all on the device,
   optionally in ``channels_last`` memory format.
3. `autocast` wraps the forward pass in ``torch.autocast`` (bf16 / fp16) when asked.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ModelError
from ...types import Frame

__all__ = ["AUTOCAST_DTYPES", "FastPath", "FrameUploader", "Normalization", "ResizeSpec", "autocast", "prepare_batch"]

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class FastPath:
    """Speed options shared by every network model (model options of the same names).

    autocast: None (fp32), "bf16" or "fp16": mixed precision of the forward pass.
    channels_last: NHWC memory format for the input and the convolutional weights.
    compile: wrap the network in `torch.compile` (first frames are slow while it compiles).
    """

    autocast: str | None = None
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self):
        if self.autocast not in (None, *AUTOCAST_DTYPES):
            raise ModelError(f"model option autocast is {self.autocast!r}; expected none, bf16 or fp16")


@dataclass(frozen=True)
class Normalization:
    """Per-channel input normalisation, RGB, in 0..255 units: ``(x - mean) / std``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET = Normalization(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
UNIT = Normalization(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))  # maps 0..255 to 0..1


@dataclass(frozen=True)
class ResizeSpec:
    """Test-time resize: shorter side to `short_side` unless the longer side would pass `max_side`.

    `size_divisor`: the network input is zero-padded (bottom/right) to a multiple of it.
    `short_side=0` keeps the frame size.
    """

    short_side: int = 800
    max_side: int = 1333
    size_divisor: int = 32

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.short_side <= 0:
            return height, width
        scale = self.short_side / min(height, width)
        if max(height, width) * scale > self.max_side:
            scale = self.max_side / max(height, width)
        return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


class FrameUploader:
    """Uploads a batch of same-size frames through one reused host buffer.

    The buffer ``(B, H, W, 3) uint8`` is pinned when the device is CUDA, so the copy is
    asynchronous (``non_blocking=True``); it is reallocated only when the batch shape grows
    or changes. Not thread-safe (models run on one thread).
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self._buffer: torch.Tensor | None = None
        self._pin = self.device.type == "cuda"
        self._copied: torch.cuda.Event | None = None  # marks the end of the last upload from the buffer
        self.reallocations = 0

    def upload(self, frames: Sequence[Frame]) -> torch.Tensor:
        """``B`` frames of equal size → ``(B, 3, H, W) uint8`` on the device."""
        h, w = frames[0].image.shape[:2]
        shape = (len(frames), h, w, 3)
        if self._copied is not None:
            self._copied.synchronize()  # the last non-blocking copy has finished reading the buffer
        if self._buffer is None or tuple(self._buffer.shape) != shape:
            self._buffer = torch.empty(shape, dtype=torch.uint8, pin_memory=self._pin)
            self.reallocations += 1
        host = self._buffer.numpy()
        for i, f in enumerate(frames):
            if f.image.shape[:2] != (h, w):
                raise ValueError("FrameUploader.upload needs frames of one size; group them first")
            np.copyto(host[i], f.image)
        if self.device.type == "cpu":
            return self._buffer.permute(0, 3, 1, 2)
        on_device = self._buffer.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record(torch.cuda.current_stream(self.device))
        return on_device.permute(0, 3, 1, 2)


def prepare_batch(
    images: torch.Tensor,
    *,
    resize: ResizeSpec,
    norm: Normalization,
    channels_last: bool = False,
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Network input from uploaded frames.

    Args:
        images: ``(B, 3, H, W) uint8`` RGB on the device.
    Returns:
        pixels: ``(B, 3, Hp, Wp) float32``, normalised, zero-padded to `resize.size_divisor`.
        size: ``(h, w)`` of the resized image inside the padding.
    """
    x = images.float()
    h, w = resize.output_size(images.shape[-2], images.shape[-1])
    if (h, w) != tuple(images.shape[-2:]):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    mean = torch.tensor(norm.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = (x - mean) / std
    d = max(1, resize.size_divisor)
    hp, wp = int(math.ceil(h / d) * d), int(math.ceil(w / d) * d)
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, wp - w, 0, hp - h))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, (h, w)


def autocast(device: torch.device, mode: str | None):
    """``torch.autocast`` for `mode` ("bf16" / "fp16") on the device type, or a no-op for None."""
    if mode is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[mode])


def group_by_size(frames: Sequence[Frame]) -> list[list[int]]:
    """Indices of `frames` grouped by image size, each group in input order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(f.image.shape[:2], []).append(i)
    return list(groups.values())
