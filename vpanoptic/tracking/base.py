"""The tracker interface."""

from __future__ import annotations

import abc

from ..types import PanopticFrame


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

    def close(self) -> None:
        """Stop any helper thread the tracker started (none by default)."""
