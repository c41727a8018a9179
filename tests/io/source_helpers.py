"""Shared media and checks of the source tests: tiny 64x48 pattern frames."""

from __future__ import annotations

import numpy as np

from vpanoptic.io.sources import Source
from vpanoptic.types import Frame

HEIGHT, WIDTH = 48, 64
NUM_FRAMES = 24
FPS = 10.0
#: Mean absolute RGB error allowed after a lossy round trip of `pattern` frames.
LOSSY_MAE = 20.0


def pattern(i: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Frame i: a 4x4 grid of flat random colours, ``(H, W, 3) uint8``; distinct per i."""
    rng = np.random.default_rng(1000 + i)
    return rng.integers(32, 224, (4, 4, 3), dtype=np.uint8).repeat(height // 4, 0).repeat(width // 4, 1)


FRAMES = [pattern(i) for i in range(NUM_FRAMES)]


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def nearest(image: np.ndarray, references: list[np.ndarray]) -> int:
    """Index of the reference closest to `image`."""
    return int(np.argmin([mae(image, r) for r in references]))


def read_all(source: Source) -> list[Frame]:
    with source:
        return list(source)


def check_frames(frames: list[Frame], expected_indices: list[int], tolerance: float = LOSSY_MAE):
    """Frames are valid, in order, and each looks like the pattern it was made from."""
    assert [f.index for f in frames] == expected_indices
    for f in frames:
        assert f.image.shape == (HEIGHT, WIDTH, 3) and f.image.dtype == np.uint8
        assert f.image.flags.c_contiguous
        assert nearest(f.image, FRAMES) == f.index
        assert mae(f.image, FRAMES[f.index]) < tolerance
    capture = [f.capture_time for f in frames]
    assert capture == sorted(capture)
