"""Display orientation: the rotation / mirroring a container asks players to apply.

Phones record sensor-oriented pictures and store the way to show them as a display matrix
(``AV_FRAME_DATA_DISPLAYMATRIX``, the MP4 ``tkhd`` matrix). FFmpeg decodes the stored
picture; players apply the matrix. These helpers do the same for decoded RGB arrays.

Sign convention (checked against PyAV 18 / FFmpeg 8): `display_matrix_rotation` and
PyAV's ``VideoFrame.rotation`` give the angle by which the matrix turns the picture
**counter-clockwise**; showing the picture means ``np.rot90(image, k=rotation // 90)``.
A file written with ``stream.set_display_rotation(90)`` reads back ``rotation == 90``.
"""

from __future__ import annotations

import math

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

__all__ = ["apply_display_matrix", "display_matrix_rotation", "frame_display_matrix"]

_FIXED_POINT_ONE = 1 << 16  # display matrix entries a, b, c, d are 16.16 fixed point


def display_matrix_rotation(matrix: np.ndarray) -> float:
    """Counter-clockwise rotation in degrees, in [-180, 180], of an FFmpeg display matrix.

    Same value as FFmpeg's ``av_display_rotation_get`` and PyAV's `VideoFrame.rotation`.

    Args:
        matrix: ``(9,) int32`` display matrix (``AV_FRAME_DATA_DISPLAYMATRIX`` layout).
    """
    m = np.asarray(matrix, dtype=np.float64) / _FIXED_POINT_ONE
    scale_x = math.hypot(m[0], m[3])
    scale_y = math.hypot(m[1], m[4])
    if scale_x == 0.0 or scale_y == 0.0:
        return 0.0  # singular matrix: ignore it, as players do
    return -math.degrees(math.atan2(m[1] / scale_y, m[0] / scale_x))


def apply_display_matrix(image: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """Rotate / flip a decoded image the way players show it (FFmpeg's ``autorotate``).

    Follows the ffmpeg/ffplay logic: the clockwise angle ``theta = -rotation`` selects a
    transpose, and the signs of the matrix entries select the extra flips. Angles that are
    not multiples of 90 degrees are rounded to the nearest one.

    Args:
        image: ``(H, W, C)`` array as decoded.
        matrix: ``(9,) int32`` display matrix, or None for "show as decoded".
    Returns:
        ``(H', W', C)`` view of `image` (``(W, H, C)`` for quarter turns), not contiguous.
    """
    if matrix is None:
        return image
    m = np.asarray(matrix, dtype=np.int64)
    quarter_turns_cw = int(round(-display_matrix_rotation(m) / 90.0)) % 4
    if quarter_turns_cw == 1:
        # transpose=clock, or cclock_flip (a plain transpose) when the matrix mirrors.
        return np.swapaxes(image, 0, 1) if m[3] > 0 else np.rot90(image, k=-1, axes=(0, 1))
    if quarter_turns_cw == 3:
        # transpose=cclock, or clock_flip (an anti-transpose) when the matrix mirrors.
        if m[3] < 0:
            return np.rot90(np.swapaxes(image, 0, 1), k=2, axes=(0, 1))
        return np.rot90(image, k=1, axes=(0, 1))
    if quarter_turns_cw == 2:
        if m[0] < 0:
            image = image[:, ::-1]
        if m[4] < 0:
            image = image[::-1]
        return image
    return image[::-1] if m[4] < 0 else image


def frame_display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
    """The frame's ``(9,) int32`` display matrix side data, or None."""
    side = frame.side_data.get(SideDataType.DISPLAYMATRIX)
    if side is None:
        return None
    matrix = np.frombuffer(bytes(side), dtype=np.int32)  # native byte order, as FFmpeg stores it
    return matrix if matrix.shape == (9,) else None
