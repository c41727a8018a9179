"""Shared test fixtures: synthetic media made by the tests themselves (no downloads)."""

from __future__ import annotations

import fractions
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np
import pytest


def encode_video(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: float = 10.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: fractions.Fraction | None = None,
    rotation: float | None = None,
    hflip: bool = False,
    vflip: bool = False,
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode ``(H, W, 3) uint8`` RGB frames to `path` with PyAV (container from the suffix).

    `pts` (in `time_base` units) gives explicit, possibly irregular timestamps; `rotation`
    (counter-clockwise degrees), `hflip` and `vflip` store a display matrix.
    """
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps).limit_denominator(1001),
                                      options=codec_options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if rotation is not None or hflip or vflip:
            stream.set_display_rotation(rotation or 0, hflip=hflip, vflip=vflip)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_video(frames, name="clip.mp4", **encode_video_kwargs) -> Path``."""

    def make(frames: Sequence[np.ndarray], name: str = "clip.mp4", **kwargs) -> Path:
        return encode_video(tmp_path / name, frames, **kwargs)

    return make


def remux_video(src: Path, dst: Path) -> Path:
    """Copy the video packets of `src` into a new container `dst` (format from its suffix), no re-encoding."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        for packet in inp.demux(s_in):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = s_out
            out.mux(packet)
    return dst


def damage_transport_stream(data: bytes) -> bytes:
    """An MPEG-TS stream damaged in two ways the decoder counts on their own: 8 transport
    packets (188 bytes each) lost at a third of it, random bytes over 6000 bytes at two
    thirds (either alone was once the only damage, and a full run then counted none)."""
    out = bytearray(data)
    lost = (len(out) // 188 // 3) * 188
    del out[lost : lost + 8 * 188]
    start = 2 * len(out) // 3
    out[start : start + 6000] = np.random.default_rng(0).integers(0, 256, 6000, dtype=np.uint8).tobytes()
    return bytes(out)


@pytest.fixture(scope="session")
def remux() -> Callable[[Path, Path], Path]:
    """``remux(src, dst) -> dst``: `remux_video` (e.g. MP4 to MPEG-TS for damaged-stream tests)."""
    return remux_video


@pytest.fixture(scope="session")
def damage_ts() -> Callable[[bytes], bytes]:
    """``damage_ts(data) -> bytes``: `damage_transport_stream`."""
    return damage_transport_stream


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` are skipped where no CUDA device is available (CI stays green)."""
    marked = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (torch.cuda.is_available() is false)")
    for item in marked:
        item.add_marker(skip)
