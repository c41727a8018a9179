"""The model interface every registry entry implements."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch

from ..types import DatasetMeta, Frame, PanopticFrame


class PanopticModel(abc.ABC):
    """A per-frame panoptic segmenter.

    Subclasses set `meta` (the dataset their category ids belong to) and `device`, and
    implement `predict`; they may append to `warnings` (and log each message once on the
    ``vpanoptic`` logger). Id maps may stay on `device` (torch int32); the pipeline moves
    them to the host once, at the sink boundary. Models are used from one thread.
    """

    meta: DatasetMeta
    device: torch.device

    @property
    def warnings(self) -> list[str]:
        """One-line messages about this model's output that the user must see (e.g. footage
        outside what the model knows), each added once; the job copies them into ``summary.json``.
        Empty by default; a per-instance list, created on first use."""
        return self.__dict__.setdefault("_warnings", [])

    def begin_input(self) -> None:
        """A new input (video, stream) starts: `warnings` about the previous one are dropped.

        The job calls it before the first frame, so a model kept across many videos (a batch
        worker) judges each of them afresh; models with per-input checks reset them here.
        """
        self.warnings.clear()

    @abc.abstractmethod
    def predict(self, frames: Sequence[Frame]) -> list[PanopticFrame]:
        """Segment a batch of frames; returns one `PanopticFrame` per input, in order.

        Track ids of the returned frames are -1 (the tracker assigns them), except for
        models that track themselves.
        """

    def close(self) -> None:  # noqa: B027 (a hook: nothing to release by default)
        """Release resources (files, GPU memory). Called once when the pipeline ends."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
