"""Camera-motion compensation: the frame-to-frame homography of the background.

A dashcam or a panning webcam moves every pixel between frames; masks remembered from the
previous frame no longer overlap their objects. `CameraMotionEstimator` tracks corners of
the background (thing pixels masked out) with pyramidal Lucas-Kanade optical flow on a
downscaled grey image and fits a homography with RANSAC (OpenCV). The inlier corners are
tracked on into the next frame; new corners are detected only when too few remain.
`local_similarity` gives each track's centre and zoom under the homography.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["CameraMotionEstimator", "MotionFit", "local_similarity"]

_KERNEL = np.ones((3, 3), np.uint8)  # things are dilated by one pixel before corners are taken


class CameraMotionEstimator:
    """Frame-to-frame homography from sparse optical flow on the background.

    Args:
        max_side: the grey image is downscaled so that its longer side is at most this (pixels).
        max_corners: corners tracked per frame (Shi-Tomasi, `cv2.goodFeaturesToTrack`).
        corner_quality: minimal accepted corner quality, relative to the best corner, in (0, 1).
        min_corner_distance: minimum distance between corners, in downscaled pixels.
        flow_window: side of the Lucas-Kanade window (pixels); pyramid_levels: its pyramid depth.
        ransac_threshold: maximum reprojection error of a RANSAC inlier, in downscaled pixels.
        min_inliers: fewer inliers than this (or a degenerate fit) gives the identity.
        max_translation: a fit that moves the image centre by more than this fraction of the
            longer side is rejected as implausible (identity).
        redetect_fraction: the inlier corners of one fit are tracked on into the next frame
            (Shi-Tomasi detection is the costliest step); corners are detected afresh when
            fewer than this fraction of `max_corners` remain. 1 = detect every frame.

    The grey image is the green channel (the largest term of luma), subsampled to at most
    twice the working size and then area-averaged: a tenth of the cost of a full-resolution
    colour conversion and resize.
    """

    def __init__(
        self,
        *,
        max_side: int = 320,
        max_corners: int = 100,
        corner_quality: float = 0.01,
        min_corner_distance: int = 8,
        flow_window: int = 11,
        pyramid_levels: int = 2,
        ransac_threshold: float = 1.0,
        min_inliers: int = 15,
        max_translation: float = 0.25,
        redetect_fraction: float = 0.5,
    ):
        if max_side < 32 or max_corners < 4 or min_inliers < 4:
            raise ValueError("camera motion: expected max_side >= 32, max_corners >= 4, min_inliers >= 4")
        if not 0 < corner_quality < 1 or ransac_threshold <= 0 or max_translation <= 0:
            raise ValueError(
                "camera motion: expected 0 < corner_quality < 1, ransac_threshold > 0, max_translation > 0"
            )
        self.max_side = int(max_side)
        self.max_corners = int(max_corners)
        self.corner_quality = float(corner_quality)
        self.min_corner_distance = int(min_corner_distance)
        self.flow_window = int(flow_window)
        self.pyramid_levels = int(pyramid_levels)
        self.ransac_threshold = float(ransac_threshold)
        self.min_inliers = int(min_inliers)
        self.max_translation = float(max_translation)
        if not 0 <= redetect_fraction <= 1:
            raise ValueError(f"camera motion: redetect_fraction is {redetect_fraction}; expected 0 <= x <= 1")
        self.redetect_fraction = float(redetect_fraction)
        self.reset()

    def reset(self) -> None:
        self._prev_grey: np.ndarray | None = None  # (h, w) uint8, downscaled
        self._prev_mask: np.ndarray | None = None  # (h, w) uint8, 255 where corners may be taken
        self._prev_points: np.ndarray | None = None  # (N, 1, 2) float32 inlier corners (x, y) in the previous grey
        self.last_inliers = 0

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the grey image the motion of a ``height x width`` frame is estimated on."""
        scale = min(1.0, self.max_side / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))

    def estimate(self, image: np.ndarray, things: np.ndarray | None = None) -> np.ndarray:
        """Homography from the previous frame to this one, in full-resolution pixel coordinates.

        Args:
            image: ``(H, W, 3) uint8`` RGB of the current frame.
            things: ``(h, w) bool`` mask of the current thing pixels at any resolution (resized
                to the working size, nearest), or None; corners are not taken on things.
                A coarser mask is cheaper: `working_size()` gives the size used.
        Returns:
            ``(3, 3) float64`` H with ``[x', y', 1] ~ H [x, y, 1]`` (previous → current);
            the identity for the first frame or when the fit fails.

        The same as ``finish(fit(image), things)``: `fit` needs only the image, so it may run on
        another thread while the caller works out `things`.
        """
        return self.finish(self.fit(image), things)

    def fit(self, image: np.ndarray) -> MotionFit:
        """The first half of `estimate`: the grey image and the homography from the previous
        frame. It reads the estimator's state and changes nothing; `finish` must follow
        (before the next `fit`) for the estimate to count."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        step = max(1, int(1 / scale) // 2)  # subsample to >= twice the working size, then average
        grey = _green(image, step)
        if grey.shape[::-1] != size:
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        fit = MotionFit(grey, (height, width), scale)
        prev, corners = self._prev_grey, self._prev_points
        if prev is None or prev.shape != grey.shape:
            return fit
        if corners is None or len(corners) < max(self.min_inliers, self.redetect_fraction * self.max_corners):
            corners = cv2.goodFeaturesToTrack(
                prev, self.max_corners, self.corner_quality, self.min_corner_distance, mask=self._prev_mask
            )
        if corners is None or len(corners) < self.min_inliers:
            return fit
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            prev, grey, corners, None, winSize=(self.flow_window, self.flow_window), maxLevel=self.pyramid_levels
        )
        ok = status.reshape(-1) == 1
        if ok.sum() < self.min_inliers:
            return fit
        src, dst = corners.reshape(-1, 2)[ok], moved.reshape(-1, 2)[ok]
        h, inliers = cv2.findHomography(src, dst, cv2.RANSAC, self.ransac_threshold)
        if h is None or inliers is None or int(inliers.sum()) < self.min_inliers:
            return fit
        fit.homography, fit.inliers = h, dst[inliers.reshape(-1).astype(bool)]
        return fit

    def finish(self, fit: MotionFit, things: np.ndarray | None = None) -> np.ndarray:
        """The second half of `estimate` (its arguments and result): remember this frame's
        grey image, where corners may be taken (off `things`) and the inlier corners on it."""
        grey, scale = fit.grey, fit.scale
        height, width = fit.frame_size
        if things is None:
            mask = np.full(grey.shape, 255, np.uint8)
        else:  # 255 where corners may be taken: off the things dilated by one pixel
            t8 = np.ascontiguousarray(things).view(np.uint8) if things.dtype == bool else things.astype(np.uint8)
            if t8.shape != grey.shape:
                t8 = cv2.resize(t8, grey.shape[::-1], interpolation=cv2.INTER_NEAREST)
            mask = cv2.compare(cv2.dilate(t8, _KERNEL), 0, cv2.CMP_EQ)
        self._prev_grey, self._prev_mask, self._prev_points = grey, mask, None
        self.last_inliers = 0
        h = fit.homography
        if h is None:
            return np.eye(3)
        self.last_inliers = len(fit.inliers)
        # inliers on the background of this frame are the next frame's corners
        kept = fit.inliers
        xi, yi = np.rint(kept[:, 0]).astype(np.int64), np.rint(kept[:, 1]).astype(np.int64)
        on = (xi >= 0) & (xi < grey.shape[1]) & (yi >= 0) & (yi < grey.shape[0])
        on[on] = mask[yi[on], xi[on]] > 0
        self._prev_points = np.ascontiguousarray(kept[on].reshape(-1, 1, 2), dtype=np.float32)
        s = np.array([scale, scale, 1.0])
        full = h * (1.0 / s)[:, None] * s  # diag(s)^-1 h diag(s): working -> full-resolution pixels
        centre = np.array([width / 2, height / 2, 1.0])
        moved_centre = full @ centre
        if abs(moved_centre[2]) < 1e-6:
            return np.eye(3)
        shift = np.linalg.norm(moved_centre[:2] / moved_centre[2] - centre[:2])
        if not np.isfinite(full).all() or shift > self.max_translation * max(height, width):
            return np.eye(3)
        return full / full[2, 2]


@dataclass
class MotionFit:
    """What `CameraMotionEstimator.fit` found for one frame (`finish` completes it).

    Attributes:
        grey: ``(h, w) uint8`` the frame's grey image at the working size.
        frame_size: ``(H, W)`` of the frame; scale: working size / frame size.
        homography: ``(3, 3)`` previous → current in working-size pixels, or None (no fit).
        inliers: ``(N, 2) float32`` (x, y) of the RANSAC inlier corners in this frame, or None.
    """

    grey: np.ndarray
    frame_size: tuple[int, int]
    scale: float
    homography: np.ndarray | None = None
    inliers: np.ndarray | None = None


def _green(image: np.ndarray, step: int) -> np.ndarray:
    """``image[::step, ::step, 1]`` as a contiguous ``(h, w) uint8`` array."""
    rows = image[::step]
    if rows.strides[1:] == (3, 1):  # pixels packed: a gather over whole rows, ~1.3x faster than a strided copy
        return np.take(rows.reshape(rows.shape[0], -1), _green_columns(image.shape[1], step), axis=1)
    return np.ascontiguousarray(rows[:, ::step, 1])


@functools.lru_cache(maxsize=8)
def _green_columns(width: int, step: int) -> np.ndarray:
    """Byte offsets, within a row of `width` RGB pixels, of the green of every `step`-th pixel."""
    return np.arange(1, 3 * width, 3 * step)


def local_similarity(h: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a homography moves each point, and how much it zooms there.

    Args:
        h: ``(3, 3)`` homography on ``[x, y, 1]``.
        points: ``(N, 2) float`` (y, x).
    Returns:
        ``(moved (N, 2) float64 (y, x), zoom (N,) float64)``: zoom is the linear scale of the
        homography at each point (square root of its Jacobian determinant), so that a small
        neighbourhood of point c moves as ``q -> moved + zoom * (q - c)``.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    y, x = pts[:, 0], pts[:, 1]
    den = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / den
    v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / den
    # Jacobian of (u, v) in (x, y): d(num / den) = (d num - (num / den) d den) / den
    du_dx, du_dy = (h[0, 0] - u * h[2, 0]) / den, (h[0, 1] - u * h[2, 1]) / den
    dv_dx, dv_dy = (h[1, 0] - v * h[2, 0]) / den, (h[1, 1] - v * h[2, 1]) / den
    zoom = np.sqrt(np.abs(du_dx * dv_dy - du_dy * dv_dx))
    return np.stack([v, u], 1), zoom
