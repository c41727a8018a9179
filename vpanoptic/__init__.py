"""vpanoptic: real-time video panoptic segmentation and tracking.

The public API, imported on first use (``import vpanoptic`` alone does not load torch)::

    cfg = vpanoptic.load_config("configs/default.yaml", ["tracker.iou_threshold=0.4"])
    summary = vpanoptic.run_video("clip.mp4", "out/", cfg)       # the `run` command
    vpanoptic.run_live("webcam:0", cfg)                          # `live`
    vpanoptic.run_batch("videos/", "out/", cfg, workers=2)       # `batch`
    for result in vpanoptic.stream("clip.mp4", max_frames=100):  # results as they come
        print(result.frame.index, result.track_ids)
    with vpanoptic.build_job("clip.mp4", cfg, sinks=[my_sink]) as job:   # your own sinks
        job.run()

Each of them sets the same torch / OpenCV thread defaults (`vpanoptic.job.set_thread_defaults`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelError, SourceError, StageError, UserError
from .version import __version__

#: Public name → the module that defines it.
_LAZY = {
    "Category": "types",
    "DatasetMeta": "types",
    "Frame": "types",
    "PanopticFrame": "types",
    "RunConfig": "config",
    "load_config": "config",
    "Job": "job",
    "build_job": "job",
    "run_video": "job",
    "Stream": "stream",
    "stream": "stream",
    "run_live": "live",
    "run_batch": "batch",
    "load_spec": "experiment",
    "run_experiment": "experiment",
}

__all__ = ["ConfigError", "ModelError", "SourceError", "StageError", "UserError", "__version__", *_LAZY]

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .batch import run_batch as run_batch
    from .config import RunConfig as RunConfig
    from .config import load_config as load_config
    from .experiment import load_spec as load_spec
    from .experiment import run_experiment as run_experiment
    from .job import Job as Job
    from .job import build_job as build_job
    from .job import run_video as run_video
    from .live import run_live as run_live
    from .stream import Stream as Stream
    from .stream import stream as stream
    from .types import Category as Category
    from .types import DatasetMeta as DatasetMeta
    from .types import Frame as Frame
    from .types import PanopticFrame as PanopticFrame


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vpanoptic' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
