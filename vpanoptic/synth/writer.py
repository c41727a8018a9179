"""Writing a synthetic sequence to disk: H.264 video, KITTI-STEP ground truth and meta.json.

Layout of a sequence directory::

    video.mp4            H.264 (libx264, yuv420p), pts from the frame times
    gt/000000.png ...    KITTI-STEP label PNGs (R = semantic id, G * 256 + B = instance id)
    meta.json            seed, frames, width, height, fps, scenario, min_instance_height (things
                         lower than this are crowd in gt/), dataset, generator version

Everything is written into a temporary sibling directory that replaces the target at the
end (`vpanoptic.outputs.staged_output`), so an interrupted run leaves no half-written
sequence behind and a rerun none of the earlier frames.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import ConfigError
from ..io.formats import write_kitti_step
from ..outputs import staged_output
from .frames import check_params, default_min_height, generate
from .world import GENERATOR_VERSION, SceneConfig, resolve_scenario

__all__ = ["SynthSequence", "write_sequence"]

VIDEO_NAME, GT_DIR, META_NAME = "video.mp4", "gt", "meta.json"
CODEC, PIX_FMT, CRF, PRESET = "libx264", "yuv420p", 18, "medium"
MAX_RATE_DENOMINATOR = 1001        # frame rates are stored as fractions, e.g. 30000/1001


@dataclass(frozen=True)
class SynthSequence:
    """A sequence written by `write_sequence`: its paths and generation parameters."""

    root: Path
    video: Path
    gt_dir: Path
    meta: Path
    seed: int
    frames: int
    width: int
    height: int
    fps: float
    scenario: str

    def gt_path(self, index: int) -> Path:
        """KITTI-STEP PNG of frame `index`."""
        return self.gt_dir / f"{index:06d}.png"


def write_sequence(out_dir: str | os.PathLike, *, seed: int = 0, frames: int = 60,
                   size: tuple[int, int] = (640, 360), fps: float | None = None,
                   scenario: str | SceneConfig = "street", overwrite: bool = False,
                   progress: Callable[[int], None] | None = None,
                   min_instance_height: float | None = None) -> SynthSequence:
    """Generate a sequence (see `vpanoptic.synth.generate`) and write it to `out_dir`.

    Args:
        out_dir: target directory; it must not exist, be empty or hold an earlier vpanoptic
            output (replaced) unless `overwrite`.
        seed, frames, scenario, min_instance_height: as for `generate` (things lower than
            this many pixels are crowd in the ground truth; None = KITTI's rule, 0 = none).
        size: (width, height), both even (yuv420p) and >= 64.
        fps: frame rate; None takes the scenario's.
        overwrite: replace a non-empty `out_dir` that vpanoptic did not write (only once the
            new sequence is complete).
        progress: called with the number of frames done after each frame.
    Raises:
        ConfigError (a UserError and ValueError) for bad parameters, `OutputError` (a UserError)
        if `out_dir` is in the way, cannot be written or the disk is full.
    """

    name, config = resolve_scenario(scenario)
    fps = config.fps if fps is None else fps
    width, height = check_params(seed, frames, size, fps)
    if width % 2 or height % 2:
        raise ConfigError(f"size is {tuple(size)}; width and height must be even (yuv420p video)")
    out = Path(out_dir)
    with staged_output(out, command="synth", overwrite=overwrite) as tmp:
        (tmp / GT_DIR).mkdir()
        min_h = default_min_height(height) if min_instance_height is None else min_instance_height
        stream = generate(seed, frames, (width, height), fps, config, min_instance_height=min_h)
        _write_video_and_gt(tmp, stream, width, height, fps, progress)
        meta = dict(dataset="kitti-step", seed=int(seed), frames=int(frames), width=width, height=height,
                    fps=float(fps), scenario=name, min_instance_height=min_h, generator="vpanoptic.synth",
                    generator_version=GENERATOR_VERSION, config=asdict(config))
        (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return SynthSequence(root=out, video=out / VIDEO_NAME, gt_dir=out / GT_DIR, meta=out / META_NAME,
                         seed=int(seed), frames=int(frames), width=width, height=height, fps=float(fps),
                         scenario=name)


def _write_video_and_gt(root: Path, frames: Iterable, width: int, height: int, fps: float,
                        progress: Callable[[int], None] | None) -> None:
    """Encode the frames' RGB to ``root/video.mp4`` and their labels to ``root/gt/*.png``."""
    rate = Fraction(fps).limit_denominator(MAX_RATE_DENOMINATOR)
    with av.open(str(root / VIDEO_NAME), mode="w") as container:   # closed on any exit
        stream = container.add_stream(CODEC, rate=rate)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, PIX_FMT
        stream.time_base = 1 / rate
        stream.codec_context.time_base = 1 / rate
        stream.options = {"crf": str(CRF), "preset": PRESET}
        for done, frame in enumerate(frames, start=1):
            picture = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
            picture.pts = round(frame.time * rate)                # time_base = 1 / rate
            picture.time_base = stream.codec_context.time_base
            for packet in stream.encode(picture):
                container.mux(packet)
            write_kitti_step(root / GT_DIR / f"{frame.index:06d}.png", frame.semantic, frame.instance)
            if progress is not None:
                progress(done)
        for packet in stream.encode(None):                       # flush the encoder
            container.mux(packet)

