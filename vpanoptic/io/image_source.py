"""A directory of still images read as a video, in natural order (``2.png`` before ``10.png``)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import cv2
import numpy as np

from ..errors import SourceError
from ..types import Frame
from .source_base import POLICY_EVERY, Source

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_IMAGE_FPS", "ImageDirSource", "natural_key", "list_images"]

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
#: Frame rate of an image directory when the caller gives none (sets `Frame.time`).
DEFAULT_IMAGE_FPS = 10.0

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``frame2.png`` < ``frame10.png``.

    Ties between names that differ only in zero padding or case fall back to the raw name.
    """
    parts = _DIGITS.split(name)  # alternates text, number, text, ...: types line up by position
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name


def list_images(directory: str) -> list[str]:
    """Paths of the image files directly inside `directory`, in natural order."""
    names = [
        n for n in os.listdir(directory)
        if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, n))
    ]
    return [os.path.join(directory, n) for n in sorted(names, key=natural_key)]


def _read_rgb(path: str) -> np.ndarray | None:
    """``(H, W, 3) uint8`` RGB, or None when the file cannot be read or decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)  # imdecode also copes with non-ASCII paths
    except OSError:
        return None
    if data.size == 0:
        return None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)  # any depth/channels → 8-bit BGR
    if bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageDirSource(Source):
    """Images in a directory, one frame each.

    ``Frame.index`` and ``Frame.pts`` are the image's position in natural order and
    ``Frame.time = index / fps``. Unreadable images are counted in `damaged` and skipped
    (their index is not reused). All images must have the size of the first one.

    Args:
        directory: the directory; files with other extensions are ignored.
        fps: frame rate that sets `Frame.time`; `DEFAULT_IMAGE_FPS` if None.
    """

    kind = "images"
    is_live = False
    default_policy = POLICY_EVERY

    fps: float  # always known for an image folder

    def __init__(self, directory: str, *, fps: float | None = None):
        super().__init__(directory)
        fps = DEFAULT_IMAGE_FPS if fps is None else fps
        if not fps > 0:
            raise SourceError(f"fps is {fps} for image directory {directory}; expected a number > 0")
        self.directory = directory
        self.fps = float(fps)
        self._paths: list[str] | None = None

    def open(self) -> None:
        if self._paths is not None:
            return
        try:
            paths = list_images(self.directory)
        except OSError as e:
            raise SourceError(f"cannot open {self.directory} as video: {e.strerror or e}") from e
        if not paths:
            raise SourceError(
                f"cannot open {self.directory} as video: the directory holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
        self._paths = paths
        self.num_frames = len(paths)

    def close(self) -> None:
        self._paths = None

    def __iter__(self) -> Iterator[Frame]:
        if self._paths is None:
            raise RuntimeError(f"image source {self.directory} is not open; call open() or use `with`")
        first: tuple[str, tuple[int, int]] | None = None  # (path, (H, W)) of the first image read
        for index, path in enumerate(self._paths):
            if self._paths is None:  # closed meanwhile
                return
            image = _read_rgb(path)
            if image is None:
                self.damaged += 1
                continue
            size = image.shape[:2]
            if first is None:
                first = (path, size)
            elif size != first[1]:
                raise SourceError(
                    f"image {path} is {size[1]}x{size[0]} but {os.path.basename(first[0])} is "
                    f"{first[1][1]}x{first[1][0]}; all images of a sequence must have one size"
                )
            yield Frame(index=index, pts=index, time=index / self.fps,
                        capture_time=time.monotonic(), image=np.ascontiguousarray(image))
