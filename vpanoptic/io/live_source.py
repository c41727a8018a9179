"""`LiveSource`: a synthetic camera that produces frames at the wall-clock rate.

It stands in for a webcam in tests and demos. The camera captures frame k at
``t0 + k / fps`` (t0 = the first request for a frame) into a one-frame buffer. The iterator
sleeps until the next frame is due; when the consumer comes back late, the frames captured
meanwhile have been overwritten: only the newest is delivered and the others are counted
in `missed`, never delivered in a burst.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ..errors import SourceError
from ..types import Frame
from .source_base import POLICY_LATEST, Source

__all__ = ["LiveSource"]


class LiveSource(Source):
    """Frames from an iterable or a function of the frame index, paced like a camera.

    Args:
        images: ``(H, W, 3) uint8`` RGB images, as an iterable (consumed in order, skipped
            images included) or a function ``index -> image``.
        fps: capture rate, > 0.
        num_frames: frames the camera captures before it stops (delivered + missed);
            None: until `images` is exhausted (forever for a function).
        name: how messages name it.

    ``Frame.index`` and ``Frame.pts`` count every captured frame, ``Frame.time = index / fps``
    and ``Frame.capture_time`` is the monotonic instant the frame was captured.
    """

    kind = "synthetic"
    is_live = True
    fps: float
    default_policy = POLICY_LATEST

    def __init__(
        self,
        images: Iterable[np.ndarray] | Callable[[int], np.ndarray],
        fps: float,
        num_frames: int | None = None,
        *,
        name: str = "synthetic",
    ):
        super().__init__(name)
        if not fps > 0:
            raise SourceError(f"fps is {fps} for live source {name!r}; expected a number > 0")
        if num_frames is not None and num_frames < 0:
            raise SourceError(f"num_frames is {num_frames} for live source {name!r}; expected >= 0")
        self.fps = float(fps)
        self.num_frames = num_frames
        self.missed = 0
        self._images = images
        self._stop = threading.Event()
        self._opened = False

    def open(self) -> None:
        self._opened = True
        self._stop.clear()

    def close(self) -> None:
        self._stop.set()  # also wakes an iterator sleeping until the next frame is due
        self._opened = False

    def __iter__(self) -> Iterator[Frame]:
        if not self._opened:
            raise RuntimeError(f"live source {self.name!r} is not open; call open() or use `with`")
        get_image = _ImageGetter(self._images)
        t0: float | None = None
        index = 0  # next frame the consumer can get
        while self.num_frames is None or index < self.num_frames:
            now = time.monotonic()
            if t0 is None:
                t0 = now
            due = t0 + index / self.fps
            first_wanted = index
            if now < due:
                while now < due:  # a timed wait may return a hair early
                    if self._stop.wait(due - now):
                        return
                    now = time.monotonic()
            else:
                # Late consumer: the camera has captured `newest` by now; older ones are lost.
                newest = math.floor((now - t0) * self.fps)
                if self.num_frames is not None:
                    newest = min(newest, self.num_frames - 1)
                index = max(index, newest)
            if self._stop.is_set():
                return
            image = get_image(index)
            if image is None:  # the images ran out; frames past their end were never captured
                if get_image.count is None or get_image.count <= first_wanted:
                    return
                index, image = get_image.count - 1, get_image.last  # the camera's last capture
                assert image is not None
            self.missed += index - first_wanted
            yield Frame(index=index, pts=index, time=index / self.fps,
                        capture_time=t0 + index / self.fps, image=image)
            index += 1


class _ImageGetter:
    """``index -> (H, W, 3) uint8`` image (non-decreasing indices), None past the end.

    From an iterable, skipped images are consumed (the camera captured them); `count` is
    the number of images it held once it is exhausted, else None.
    """

    def __init__(self, images: Iterable[np.ndarray] | Callable[[int], np.ndarray]):
        self._function = images if callable(images) else None
        self._iterator = None if callable(images) else iter(images)
        self._position = 0  # index of the next image the iterator yields
        self.count: int | None = None
        self.last: np.ndarray | None = None  # the last image taken from the iterable

    def __call__(self, index: int) -> np.ndarray | None:
        if self._function is not None:
            return np.ascontiguousarray(self._function(index))
        image = None
        assert self._iterator is not None
        while self._position <= index:
            image = next(self._iterator, None)
            if image is None:
                self.count = self._position
                return None
            self._position += 1
            self.last = image = np.ascontiguousarray(image)
        return image
