"""The sink interface: consumers of tracked `PanopticFrame`s that write outputs."""

from __future__ import annotations

import abc

from ..types import PanopticFrame


class Sink(abc.ABC):
    """Writes results. A context manager: `close()` flushes and finalises on any exit.

    `write()` receives frames in order with a NumPy id map (the pipeline moves device
    tensors to the host before the sinks). `close()` must be idempotent and must leave
    what was written so far complete and readable, even after an exception upstream.
    """

    name: str = "sink"

    @abc.abstractmethod
    def write(self, pf: PanopticFrame) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
