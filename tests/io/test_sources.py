"""Tests for vpanoptic.io.sources: files, image directories, streams, webcams, live sources.

All media are made here with PyAV / OpenCV (tiny 64x48 clips, a few dozen frames).
"""

from __future__ import annotations

import fractions
import functools
import http.server
import os
import socket
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vpanoptic.errors import SourceError, UserError
from vpanoptic.io import av_sources
from vpanoptic.io.sources import (
    FileSource,
    ImageDirSource,
    LiveSource,
    Source,
    StreamSource,
    WebcamSource,
    apply_display_matrix,
    display_matrix_rotation,
    open_source,
    parse_webcam_spec,
    source_kind,
)
from vpanoptic.types import Frame

HEIGHT, WIDTH = 48, 64
NUM_FRAMES = 24
FPS = 10.0
#: Mean absolute RGB error allowed after a lossy round trip of `pattern` frames.
LOSSY_MAE = 20.0


def pattern(i: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Frame i: a 4x4 grid of flat random colours, ``(H, W, 3) uint8``; distinct per i."""
    rng = np.random.default_rng(1000 + i)
    return rng.integers(32, 224, (4, 4, 3), dtype=np.uint8).repeat(height // 4, 0).repeat(width // 4, 1)


FRAMES = [pattern(i) for i in range(NUM_FRAMES)]


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def nearest(image: np.ndarray, references: list[np.ndarray]) -> int:
    """Index of the reference closest to `image`."""
    return int(np.argmin([mae(image, r) for r in references]))


def read_all(source: Source) -> list[Frame]:
    with source:
        return list(source)


def check_frames(frames: list[Frame], expected_indices: list[int], tolerance: float = LOSSY_MAE):
    """Frames are valid, in order, and each looks like the pattern it was made from."""
    assert [f.index for f in frames] == expected_indices
    for f in frames:
        assert f.image.shape == (HEIGHT, WIDTH, 3) and f.image.dtype == np.uint8
        assert f.image.flags.c_contiguous
        assert nearest(f.image, FRAMES) == f.index
        assert mae(f.image, FRAMES[f.index]) < tolerance
    capture = [f.capture_time for f in frames]
    assert capture == sorted(capture)


# ----------------------------------------------------------------------------- spec parsing
def test_missing_path_fails_in_open_source(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=f"^input not found: {missing}$"):
        open_source(str(missing))
    assert issubclass(SourceError, UserError)


@pytest.mark.parametrize(
    "spec, kind",
    [
        ("rtsp://cam.local:554/stream1", "stream"),
        ("RTSPS://cam.local/s", "stream"),
        ("rtmp://example.com/live/key", "stream"),
        ("http://127.0.0.1:8000/a.mp4", "stream"),
        ("https://example.com/a.m3u8", "stream"),
        ("udp://239.0.0.1:1234", "stream"),
        ("tcp://127.0.0.1:9000", "stream"),
        ("srt://127.0.0.1:9000", "stream"),
        ("webcam:0", "webcam"),
        ("webcam", "webcam"),
        ("/dev/video2", "webcam"),
    ],
)
def test_source_kind(spec, kind):
    assert source_kind(spec) == kind


def test_source_kind_paths(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    assert source_kind(str(tmp_path)) == "images"
    assert source_kind(str(tmp_path / "a.mp4")) == "file"
    with pytest.raises(SourceError, match="input not found: ftp://x/y"):
        source_kind("ftp://x/y")


def test_open_source_returns_unopened_sources(tmp_path, make_video):
    path = make_video(FRAMES[:3])
    source = open_source(path)  # os.PathLike accepted
    assert isinstance(source, FileSource) and source.name == str(path)
    with pytest.raises(RuntimeError, match="not open"):
        next(iter(source))
    assert isinstance(open_source(str(tmp_path)), ImageDirSource)
    assert isinstance(open_source("webcam:0"), WebcamSource)
    stream = open_source("rtsp://user:secret@127.0.0.1:1/s")
    assert isinstance(stream, StreamSource)
    assert stream.options["rtsp_transport"] == "tcp"
    assert open_source("rtsp://h/s", options={"rtsp_transport": "udp"}).options["rtsp_transport"] == "udp"


def test_source_attributes():
    expected = {
        FileSource: ("file", False, "every"),
        ImageDirSource: ("images", False, "every"),
        WebcamSource: ("webcam", True, "latest"),
        StreamSource: ("stream", True, "staleness:1.0"),
        LiveSource: ("synthetic", True, "latest"),
    }
    for cls, (kind, live, policy) in expected.items():
        assert (cls.kind, cls.is_live, cls.default_policy) == (kind, live, policy)


# ----------------------------------------------------------------------------- files
CONTAINERS = [
    ("clip.mp4", "libx264", "yuv420p"),
    ("clip.mkv", "libx264", "yuv420p"),
    ("clip.avi", "mpeg4", "yuv420p"),
    ("clip.ts", "mpeg2video", "yuv420p"),
    ("clip.webm", "libvpx-vp9", "yuv420p"),
    ("clip.mov", "mjpeg", "yuvj420p"),
    ("clip.mkv", "ffv1", "yuv444p"),
]


@pytest.mark.parametrize("name, codec, pix_fmt", CONTAINERS, ids=[f"{n}-{c}" for n, c, _ in CONTAINERS])
def test_file_containers_and_codecs(make_video, name, codec, pix_fmt):
    path = make_video(FRAMES, name=name, codec=codec, pix_fmt=pix_fmt, fps=FPS)
    source = open_source(str(path))
    frames = read_all(source)
    check_frames(frames, list(range(NUM_FRAMES)))
    assert source.damaged == 0
    assert source.fps == pytest.approx(FPS)
    assert source.num_frames is None or abs(source.num_frames - NUM_FRAMES) <= 1
    # Times from pts relative to the stream start (.ts streams start at 1.4 s or so).
    times = [f.time for f in frames]
    assert times == pytest.approx([i / FPS for i in range(NUM_FRAMES)], abs=1e-3)
    assert all(isinstance(f.pts, int) for f in frames)


def test_lossless_content_is_exact_up_to_color_conversion(make_video):
    path = make_video(FRAMES[:4], name="clip.mkv", codec="ffv1", pix_fmt="yuv444p")
    frames = read_all(open_source(path))
    for f in frames:
        assert mae(f.image, FRAMES[f.index]) < 1.5  # only RGB <-> YUV rounding


@pytest.mark.parametrize("name", ["vfr.mkv", "vfr.mp4"])
def test_variable_frame_rate_times_come_from_pts(make_video, name):
    millis = [0, 40, 80, 200, 240, 500, 510, 900]
    path = make_video(FRAMES[: len(millis)], name=name, pts=millis,
                      time_base=fractions.Fraction(1, 1000), fps=25)
    frames = read_all(open_source(path))
    check_frames(frames, list(range(len(millis))))
    assert [f.time for f in frames] == pytest.approx([m / 1000 for m in millis], abs=1e-4)


def test_nonzero_start_time(make_video):
    millis = [5000 + 100 * i for i in range(6)]
    path = make_video(FRAMES[:6], name="late.mkv", pts=millis, time_base=fractions.Fraction(1, 1000))
    frames = read_all(open_source(path))
    assert [f.time for f in frames] == pytest.approx([0.1 * i for i in range(6)], abs=1e-4)
    assert [f.pts for f in frames] == millis  # the raw pts, in stream time base (1/1000 in mkv)


@pytest.mark.parametrize("text", ["not a video\n" * 20, "hello\n" * 100])  # FFmpeg renders the 2nd as ANSI art
def test_text_file_is_not_a_video(tmp_path, text):
    path = tmp_path / "notes.txt"
    path.write_text(text)
    source = open_source(str(path))
    with pytest.raises(SourceError, match=f"^cannot open {path} as video: "):
        source.open()


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(SourceError, match="has no video stream .*audio"):
        open_source(str(path)).open()


def test_close_is_idempotent_and_stops_iteration(make_video):
    source = open_source(make_video(FRAMES))
    with source:
        it = iter(source)
        first = [next(it) for _ in range(3)]
        source.close()
        assert list(it) == []  # closed: the iterator ends, it does not touch freed FFmpeg state
        source.close()
    source.close()
    assert [f.index for f in first] == [0, 1, 2]


def test_close_from_another_thread_while_decoding(make_video):
    source = open_source(make_video(FRAMES * 4, name="long.mkv"))
    source.open()
    seen = []
    for frame in source:
        seen.append(frame.index)
        if frame.index == 5:
            closer = threading.Thread(target=source.close)
            closer.start()
            closer.join(timeout=10)
            assert not closer.is_alive()
    assert seen[:6] == list(range(6)) and len(seen) < NUM_FRAMES * 4


# ----------------------------------------------------------------------------- rotation
def _orientation_frame() -> np.ndarray:
    """An asymmetric picture: red top-left quadrant, green top-right, blue bottom-left."""
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    image[: HEIGHT // 2, : WIDTH // 2] = (220, 30, 30)
    image[: HEIGHT // 2, WIDTH // 2:] = (30, 220, 30)
    image[HEIGHT // 2:, : WIDTH // 2] = (30, 30, 220)
    return image


@pytest.mark.parametrize(
    "rotation, hflip, vflip, shown",
    [
        (90, False, False, lambda a: np.rot90(a, 1)),  # counter-clockwise quarter turn
        (-90, False, False, lambda a: np.rot90(a, -1)),
        (180, False, False, lambda a: np.rot90(a, 2)),
        (0, True, False, lambda a: a[:, ::-1]),
        (0, False, True, lambda a: a[::-1]),
        (0, False, False, lambda a: a),
    ],
)
def test_display_matrix_is_applied(make_video, rotation, hflip, vflip, shown):
    picture = _orientation_frame()
    path = make_video([picture] * 3, name="rot.mp4", rotation=rotation, hflip=hflip, vflip=vflip)
    with av.open(str(path)) as container:  # PyAV's own reading of the stored angle
        stored = next(container.decode(video=0)).rotation
    assert (stored - (180 if hflip else rotation)) % 360 == 0  # a mirror reads as a half turn
    frames = read_all(open_source(path))
    expected = shown(picture)
    for f in frames:
        assert f.image.shape == expected.shape and f.image.flags.c_contiguous
        assert mae(f.image, expected) < 8


def _matrix(a, b, c, d) -> np.ndarray:
    """Display matrix with 2x2 part [[a, b], [c, d]] (entries -1, 0, 1) in 16.16 fixed point."""
    one = 1 << 16
    return np.array([a * one, b * one, 0, c * one, d * one, 0, 0, 0, 1 << 30], dtype=np.int32)


@pytest.mark.parametrize(
    "matrix, rotation, shown",
    [
        (_matrix(1, 0, 0, 1), 0, lambda a: a),
        (_matrix(0, -1, 1, 0), 90, lambda a: np.rot90(a, 1)),
        (_matrix(0, 1, -1, 0), -90, lambda a: np.rot90(a, -1)),
        (_matrix(-1, 0, 0, -1), 180, lambda a: a[::-1, ::-1]),
        (_matrix(-1, 0, 0, 1), 180, lambda a: a[:, ::-1]),  # mirror: ffmpeg's hflip
        (_matrix(1, 0, 0, -1), 0, lambda a: a[::-1]),  # ffmpeg's vflip
        (_matrix(0, 1, 1, 0), -90, lambda a: a.transpose(1, 0, 2)),  # ffmpeg's cclock_flip
        (None, 0, lambda a: a),
    ],
)
def test_apply_display_matrix_on_arrays(matrix, rotation, shown):
    image = np.arange(3 * 4 * 2, dtype=np.uint8).reshape(3, 4, 2)
    if matrix is not None:
        assert (display_matrix_rotation(matrix) - rotation) % 360 == pytest.approx(0, abs=1e-6)
    np.testing.assert_array_equal(apply_display_matrix(image, matrix), shown(image))


# ----------------------------------------------------------------------------- damage
def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    out = path.with_name("cut_" + path.name)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


@pytest.mark.parametrize("name, codec", [("clip.mkv", "libx264"), ("clip.ts", "mpeg2video")])
def test_truncated_file_gives_the_frames_before_the_cut(make_video, name, codec):
    path = make_video(FRAMES, name=name, codec=codec, codec_options={"g": "4"})
    source = open_source(_cut(path, 0.5))
    frames = read_all(source)  # no exception: the demuxer reports a clean end of file
    assert 0 < len(frames) < NUM_FRAMES
    assert [f.index for f in frames] == list(range(len(frames)))
    # The packet the cut went through may decode to a concealed picture; the others are intact.
    check_frames(frames[:-1], list(range(len(frames) - 1)))
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(len(frames))], abs=1e-3)
    assert source.damaged <= 1  # at most that packet


def test_truncated_faststart_mp4_counts_the_missing_packets(make_video):
    # With the index at the front, the demuxer still lists the packets past the cut; the
    # decoder rejects the partial ones. (Without faststart the index is at the end and a
    # cut file cannot be opened at all: see the next test.)
    path = make_video(FRAMES, name="clip.mp4", codec_options={"g": "4"},
                      container_options={"movflags": "faststart"})
    source = open_source(_cut(path, 0.6))
    frames = read_all(source)
    assert 0 < len(frames) < NUM_FRAMES
    check_frames(frames, list(range(len(frames))))
    assert source.damaged > 0


def test_truncated_mp4_without_index_cannot_be_opened(make_video):
    path = make_video(FRAMES, name="clip.mp4")
    with pytest.raises(SourceError, match="cannot open .* as video: "):
        open_source(_cut(path, 0.5)).open()


def test_corrupt_bytes_in_a_ts_file_are_counted_and_skipped(make_video):
    path = make_video(FRAMES, name="clip.ts", codec="mpeg2video", codec_options={"g": "4"})
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for offset in range(len(data) // 3, 2 * len(data) // 3, 1000):
        data[offset: offset + 100] = rng.integers(0, 256, 100, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    source = open_source(str(path))
    frames = read_all(source)
    assert source.damaged > 0
    assert 0 < len(frames) <= NUM_FRAMES
    indices = [f.index for f in frames]
    assert indices == list(range(len(frames)))
    assert [f.time for f in frames] == sorted(f.time for f in frames)
    # Frames before the damage are intact.
    assert nearest(frames[0].image, FRAMES) == 0 and mae(frames[0].image, FRAMES[0]) < LOSSY_MAE


# ----------------------------------------------------------------------------- image dirs
def _write_image(path: Path, image: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_image_dir_natural_order_and_times(tmp_path):
    names = ["frame_10.png", "frame_2.png", "frame_1.png", "frame_3.bmp", "frame_11.tiff", "frame_20.webp"]
    order = ["frame_1.png", "frame_2.png", "frame_3.bmp", "frame_10.png", "frame_11.tiff", "frame_20.webp"]
    for name in names:
        _write_image(tmp_path / name, FRAMES[order.index(name)])
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "sub.png").mkdir()  # a directory with an image-like name is ignored too
    source = open_source(str(tmp_path), fps=4.0)
    frames = read_all(source)
    assert source.kind == "images" and source.num_frames == len(order) and source.fps == 4.0
    check_frames(frames, list(range(len(order))), tolerance=1.0)  # lossless formats only
    assert [f.pts for f in frames] == list(range(len(order)))
    assert [f.time for f in frames] == [i / 4.0 for i in range(len(order))]


def test_image_dir_jpeg_and_default_fps(tmp_path):
    for i in range(3):
        _write_image(tmp_path / f"{i}.jpg", FRAMES[i])
    source = open_source(str(tmp_path))
    frames = read_all(source)
    check_frames(frames, [0, 1, 2])
    assert [f.time for f in frames] == [0.0, 0.1, 0.2]


def test_image_dir_unreadable_image_is_counted_and_skipped(tmp_path):
    for i in range(4):
        _write_image(tmp_path / f"{i}.png", FRAMES[i])
    (tmp_path / "2.png").write_bytes(b"this is not a png")
    (tmp_path / "4.png").write_bytes(b"")
    source = open_source(str(tmp_path))
    frames = read_all(source)
    assert source.damaged == 2
    check_frames(frames, [0, 1, 3], tolerance=1.0)
    assert [f.time for f in frames] == [0.0, 0.1, 0.3]


def test_image_dir_mixed_sizes_is_an_error_naming_the_file(tmp_path):
    _write_image(tmp_path / "1.png", FRAMES[0])
    _write_image(tmp_path / "2.png", FRAMES[1])
    _write_image(tmp_path / "3.png", pattern(2, height=32, width=32))
    source = open_source(str(tmp_path))
    with source, pytest.raises(SourceError, match=r"3\.png is 32x32 but 1\.png is 64x48"):
        list(source)


def test_empty_or_imageless_dir_is_an_error(tmp_path):
    with pytest.raises(SourceError, match=f"cannot open {tmp_path} as video: .*no images"):
        open_source(str(tmp_path)).open()
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path)).open()


def test_image_dir_rejects_options_and_bad_fps(tmp_path):
    with pytest.raises(SourceError, match="do not apply"):
        open_source(str(tmp_path), options={"video_size": "64x48"})
    with pytest.raises(SourceError, match="fps is 0"):
        open_source(str(tmp_path), fps=0)


# ----------------------------------------------------------------------------- streams
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """Serve `tmp_path` on a loopback HTTP server; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_stream_on_loopback(make_video, http_dir):
    make_video(FRAMES, name="clip.mp4")
    source = open_source(f"{http_dir}/clip.mp4")
    assert (source.kind, source.is_live, source.default_policy) == ("stream", True, "staleness:1.0")
    frames = read_all(source)
    check_frames(frames, list(range(NUM_FRAMES)))
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(NUM_FRAMES)], abs=1e-3)
    assert source.num_frames is None and source.fps == pytest.approx(FPS)


def test_http_not_found_names_the_url(http_dir):
    url = f"{http_dir}/missing.mp4"
    with pytest.raises(SourceError, match=f"cannot open stream {url}: .*404"):
        open_source(url).open()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["http", "tcp", "rtsp"])
def test_refused_connection_names_the_url(scheme):
    url = f"{scheme}://127.0.0.1:{_closed_port()}/x"
    started = time.monotonic()
    with pytest.raises(SourceError, match=f"^cannot open stream {url}: .*[Rr]efused"):
        StreamSource(url, open_timeout_s=5.0).open()
    assert time.monotonic() - started < 5.0


def test_silent_server_times_out_on_open():
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/clip.mp4"
        started = time.monotonic()
        with pytest.raises(SourceError, match=f"^cannot open stream {url}: no answer within 1 s$"):
            StreamSource(url, open_timeout_s=1.0).open()
        assert time.monotonic() - started < 4.0


def test_stream_that_stalls_raises_instead_of_hanging(make_video):
    data = make_video(FRAMES * 4, name="long.mkv", codec_options={"g": "4"}).read_bytes()
    release = threading.Event()

    class StallingHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # announce the whole file, send half, then go silent
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            release.wait(10)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StallingHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/long.mkv"
    frames = []
    try:
        source = StreamSource(url, read_timeout_s=1.0)
        with source, pytest.raises(SourceError, match=f"^lost stream {url}: no data for 1 s$"):
            for frame in source:
                frames.append(frame)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert 0 < len(frames) < 4 * NUM_FRAMES
    assert [f.index for f in frames] == list(range(len(frames)))


def test_stream_password_is_not_shown():
    url = f"rtsp://admin:hunter2@127.0.0.1:{_closed_port()}/live"
    with pytest.raises(SourceError) as info:
        open_source(url).open()
    assert "hunter2" not in str(info.value) and "admin:***@127.0.0.1" in str(info.value)


# ----------------------------------------------------------------------------- webcams
@pytest.mark.parametrize(
    "spec, platform, expected",
    [
        ("webcam:0", "linux", ("/dev/video0", "v4l2")),
        ("webcam:3", "linux", ("/dev/video3", "v4l2")),
        ("webcam", "linux", ("/dev/video0", "v4l2")),
        ("/dev/video2", "linux", ("/dev/video2", "v4l2")),
        ("webcam:/dev/video4", "linux", ("/dev/video4", "v4l2")),
        ("webcam:1", "darwin", ("1:none", "avfoundation")),
        ("webcam:FaceTime HD Camera", "darwin", ("FaceTime HD Camera:none", "avfoundation")),
        ("webcam:Integrated Camera", "win32", ("video=Integrated Camera", "dshow")),
    ],
)
def test_parse_webcam_spec(spec, platform, expected):
    assert parse_webcam_spec(spec, platform) == expected


@pytest.mark.parametrize(
    "spec, platform, message",
    [
        ("webcam:front", "linux", "on Linux use webcam:N"),
        ("/dev/video0", "darwin", "Linux only"),
        ("webcam:0", "sunos5", "not supported on platform"),
        ("cam:0", "linux", "not a webcam spec"),
    ],
)
def test_parse_webcam_spec_errors(spec, platform, message):
    with pytest.raises(SourceError, match=message):
        parse_webcam_spec(spec, platform)


def test_windows_webcam_index_uses_the_device_list(monkeypatch):
    class Device:
        def __init__(self, name, media_types):
            self.name, self.media_types = name, media_types

    devices = [Device("Microphone", ["audio"]), Device("USB Cam", ["video"]), Device("IR Cam", ["video"])]
    monkeypatch.setattr(av_sources.av.device, "enumerate_input_devices", lambda fmt: devices)
    assert parse_webcam_spec("webcam:1", "win32") == ("video=IR Cam", "dshow")
    with pytest.raises(SourceError, match="no camera 2 .*'USB Cam', 'IR Cam'"):
        parse_webcam_spec("webcam:2", "win32")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2 device paths are Linux only")
def test_webcam_that_cannot_be_opened():
    index = next(i for i in range(60, 100) if not os.path.exists(f"/dev/video{i}"))
    source = open_source(f"webcam:{index}", options={"video_size": "640x480"})
    assert (source.kind, source.is_live, source.default_policy) == ("webcam", True, "latest")
    assert source.num_frames is None
    with pytest.raises(SourceError, match=rf"^cannot open webcam 'webcam:{index}' \(/dev/video{index}\): "):
        source.open()


def test_webcam_fps_becomes_the_framerate_option():
    assert WebcamSource("webcam:0", fps=15, platform="linux").options["framerate"] == "15"
    explicit = WebcamSource("webcam:0", fps=15, options={"framerate": "30"}, platform="linux")
    assert explicit.options["framerate"] == "30"


# ----------------------------------------------------------------------------- live source
def test_live_source_paces_frames_at_the_capture_rate():
    fps, count = 20.0, 10
    source = LiveSource(lambda i: pattern(i), fps=fps, num_frames=count)
    assert (source.kind, source.is_live, source.default_policy) == ("synthetic", True, "latest")
    started = time.monotonic()
    frames = read_all(source)
    elapsed = time.monotonic() - started
    assert elapsed >= (count - 1) / fps - 1e-3  # never faster than the camera
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and indices[-1] == count - 1
    assert len(frames) + source.missed == count
    for f in frames:
        assert f.time == f.index / fps and f.pts == f.index
        assert np.array_equal(f.image, pattern(f.index))
        assert f.capture_time <= time.monotonic()


def test_live_source_for_half_a_second_gives_about_ten_frames():
    source = LiveSource(lambda i: pattern(i % NUM_FRAMES), fps=20.0)
    frames = []
    with source:
        deadline = time.monotonic() + 0.5
        for frame in source:
            frames.append(frame)
            if time.monotonic() >= deadline:
                break
    # At most one frame per 50 ms from t0 (frame 0 at once); fewer only if the machine stalls.
    assert 2 <= len(frames) <= 12
    assert all(f.time == f.index / 20.0 for f in frames)


def test_live_source_skips_frames_for_a_slow_consumer():
    fps, count, work_s = 50.0, 30, 0.1  # the consumer needs 5 frame periods per frame
    source = LiveSource([pattern(i % NUM_FRAMES) for i in range(count)], fps=fps)
    frames = []
    with source:
        for frame in source:
            frames.append(frame)
            time.sleep(work_s)
    indices = [f.index for f in frames]
    assert source.missed > 0
    assert len(frames) + source.missed == count
    assert all(b - a >= 4 for a, b in zip(indices, indices[1:]))  # no burst of stale frames
    assert len(frames) <= 1 + count // 4
    for f in frames:  # the iterable was consumed in step: image i is frame i
        assert np.array_equal(f.image, pattern(f.index % NUM_FRAMES))
        assert f.time == f.index / fps


def test_live_source_close_wakes_a_waiting_iterator():
    source = LiveSource(lambda i: pattern(0), fps=0.5)  # next frame due in 2 s
    source.open()
    it = iter(source)
    assert next(it).index == 0
    threading.Timer(0.1, source.close).start()
    started = time.monotonic()
    assert list(it) == []
    assert time.monotonic() - started < 1.5


def test_live_source_must_be_opened_and_validates():
    with pytest.raises(RuntimeError, match="not open"):
        next(iter(LiveSource(lambda i: pattern(0), fps=10)))
    with pytest.raises(SourceError, match="fps is 0"):
        LiveSource(lambda i: pattern(0), fps=0)
