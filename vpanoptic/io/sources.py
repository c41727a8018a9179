"""Video sources: `open_source(spec)` and the `Source` kinds it returns.

=========================  ==========  =====================  ==========================
spec                       kind        class                  default frame policy
=========================  ==========  =====================  ==========================
existing file              file        `FileSource`           ``every``
existing directory         images      `ImageDirSource`       ``every``
``webcam:N``, /dev/videoN  webcam      `WebcamSource`         ``latest``
``rtsp://`` ``http://`` …  stream      `StreamSource`         ``staleness:1.0``
(in code only)             synthetic   `LiveSource`           ``latest``
=========================  ==========  =====================  ==========================

`open_source` only checks the spec and returns an unopened source; ``open()`` (or ``with``)
opens it. Every failure a user can cause is a `vpanoptic.errors.SourceError` with one line.
"""

from __future__ import annotations

import os

from ..errors import SourceError
from .av_sources import (
    STREAM_SCHEMES,
    FileSource,
    StreamSource,
    WebcamSource,
    parse_webcam_spec,
)
from .image_source import DEFAULT_IMAGE_FPS, IMAGE_EXTENSIONS, ImageDirSource
from .live_source import LiveSource
from .orientation import apply_display_matrix, display_matrix_rotation
from .source_base import POLICY_EVERY, POLICY_LATEST, POLICY_STREAM, Source

__all__ = [
    "DEFAULT_IMAGE_FPS",
    "FileSource",
    "IMAGE_EXTENSIONS",
    "ImageDirSource",
    "LiveSource",
    "POLICY_EVERY",
    "POLICY_LATEST",
    "POLICY_STREAM",
    "STREAM_SCHEMES",
    "Source",
    "StreamSource",
    "WebcamSource",
    "apply_display_matrix",
    "display_matrix_rotation",
    "open_source",
    "parse_webcam_spec",
    "source_kind",
]


def source_kind(spec: str) -> str:
    """The kind of source `spec` names: file, images, webcam or stream.

    URLs and webcam specs are recognised by their form; anything else must be an existing
    path. Raises `SourceError("input not found: SPEC")` otherwise.
    """
    scheme, sep, _ = spec.partition("://")
    if sep and scheme.lower() in STREAM_SCHEMES:
        return "stream"
    if spec == "webcam" or spec.startswith(("webcam:", "/dev/video")):
        return "webcam"
    if os.path.isdir(spec):
        return "images"
    if os.path.exists(spec):
        return "file"
    raise SourceError(f"input not found: {spec}")


def open_source(spec: str | os.PathLike, *, fps: float | None = None,
                options: dict[str, str] | None = None) -> Source:
    """An unopened `Source` for a path, directory, webcam spec or stream URL.

    Args:
        spec: a video file, a directory of images, ``webcam:N`` / ``/dev/videoN``, or a URL
            (``rtsp://``, ``rtsps://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``tcp://``,
            ``srt://``).
        fps: image directories: their frame rate (default 10); webcams: the requested rate;
            files and streams: the rate for frames without timestamps only.
        options: FFmpeg options (``av.open(..., options=)``): demuxer, protocol or device
            options such as ``{"video_size": "640x480"}``. Not valid for image directories.
    Raises:
        SourceError: the input does not exist or the spec is malformed.
    """
    spec = os.fspath(spec)
    kind = source_kind(spec)
    if kind == "images":
        if options:
            raise SourceError(f"options {sorted(options)} do not apply to image directory {spec}")
        return ImageDirSource(spec, fps=fps)
    if kind == "file":
        return FileSource(spec, fps=fps, options=options)
    if kind == "webcam":
        return WebcamSource(spec, fps=fps, options=options)
    return StreamSource(spec, fps=fps, options=options)
