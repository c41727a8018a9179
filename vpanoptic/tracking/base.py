"""The tracker interface, and the thread limit trackers run under."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from ..types import PanopticFrame

__all__ = ["Tracker", "torch_single_thread"]


@contextlib.contextmanager
def torch_single_thread() -> Iterator[None]:
    """Run the block with torch's intra-op threads at 1, then restore the caller's count.

    A tracker's tensors are small: at 2 or more threads each op pays the hand-over to an
    OpenMP team, which costs more than the op (on a busy 2-core machine, 40x: measured by
    `benchmarks/tracker_speed.py --threads 1,2`). OpenMP keeps the count per thread, so
    threads that already run torch (a model's) keep theirs.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class Tracker(abc.ABC):
    """Assigns temporally consistent track ids to the things of consecutive frames.

    `update()` is called once per frame, in order, from one thread; it returns the frame with
    `track_ids` filled in (> 0 for things, -1 for stuff). All state lives on the instance;
    `reset()` forgets every track and restarts ids at 1. `close()` releases helper threads
    (the tracker stays usable: they start again with the next `update()`).
    """

    @abc.abstractmethod
    def update(self, pf: PanopticFrame) -> PanopticFrame: ...

    @abc.abstractmethod
    def reset(self) -> None: ...

    def close(self) -> None:  # noqa: B027 (optional hook: most trackers hold nothing to close)
        """Stop any helper thread the tracker started (none by default)."""


def frame_id_map(
    pf: PanopticFrame, device: torch.device | None, previous_shape: tuple[int, int] | None
) -> torch.Tensor:
    """``pf.id_map`` as an ``(H, W)`` tensor on `device` (None: where it is).

    A frame of another size than `previous_shape` (the tracker's last frame; None: the first
    frame) is a ValueError: ids would be matched across different images.
    """
    id_map = pf.id_map if isinstance(pf.id_map, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pf.id_map))
    if device is not None:
        id_map = id_map.to(device)
    shape = (int(id_map.shape[0]), int(id_map.shape[1]))
    if previous_shape is not None and previous_shape != shape:
        raise ValueError(f"frame size changed from {previous_shape} to {shape}; reset() the tracker first")
    return id_map
