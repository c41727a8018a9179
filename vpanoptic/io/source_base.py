"""The `Source` interface: producers of `Frame`s (files, image directories, cameras, streams).

A source is created unopened by `open_source()` (which only checks the spec), opened by
`open()` (which raises `SourceError` with one line a user can act on), iterated once in
order, and closed by `close()` (idempotent). It is a context manager::

    with open_source("drive.mp4") as source:
        for frame in source:          # vpanoptic.types.Frame
            ...

Frame policies (how the pipeline's queue treats a slow consumer) are named by strings:
``"every"`` (block the producer, drop nothing), ``"latest"`` (keep only the newest frame),
``"staleness:S"`` (drop frames older than S seconds).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Literal

from ..types import Frame

__all__ = ["Source", "POLICY_EVERY", "POLICY_LATEST", "STREAM_MAX_STALENESS_S", "POLICY_STREAM"]

POLICY_EVERY = "every"
POLICY_LATEST = "latest"
#: Frames from network streams older than this many seconds are dropped by default.
STREAM_MAX_STALENESS_S = 1.0
POLICY_STREAM = f"staleness:{STREAM_MAX_STALENESS_S}"


class Source(abc.ABC):
    """A producer of `Frame`s in presentation order.

    Attributes:
        kind: ``"file"``, ``"images"``, ``"webcam"``, ``"stream"`` or ``"synthetic"``.
        name: what the user passed (path, URL, device spec), for messages.
        is_live: True when frames arrive at the wall-clock rate of a camera (webcam, stream,
            synthetic live) and cannot be waited for without losing the newest ones.
        default_policy: the frame policy the pipeline uses unless told otherwise.
        fps: nominal frame rate if known, else None. Frame times never depend on it when
            the input carries timestamps.
        num_frames: total number of frames if known (for progress bars), else None.
        damaged: packets or images that could not be decoded; they are counted and
            skipped, never fatal.
    """

    kind: str
    name: str
    is_live: bool
    default_policy: str

    def __init__(self, name: str):
        self.name = name
        self.fps: float | None = None
        self.num_frames: int | None = None
        self.damaged = 0

    @abc.abstractmethod
    def open(self) -> None:
        """Open the input; raises `vpanoptic.errors.SourceError` with one actionable line.

        Idempotent: opening an open source does nothing (callers may open early to fail
        fast, and the pipeline opens whatever it is given).
        """

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yield `Frame`s in order: ``image`` is ``(H, W, 3) uint8`` RGB, C-contiguous."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the input. Idempotent; safe to call from another thread."""

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc) -> Literal[False]:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, kind={self.kind!r})"
