"""Tests for vpanoptic.io.sources: image directories, streams, webcams, live sources.

All media are made here with PyAV / OpenCV (tiny 64x48 clips, a few dozen frames).
"""

from __future__ import annotations

import functools
import http.server
import os
import socket
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from source_helpers import (
    FPS,
    FRAMES,
    NUM_FRAMES,
    check_frames,
    pattern,
    read_all,
)

from vpanoptic.errors import SourceError
from vpanoptic.io import av_sources
from vpanoptic.io.sources import (
    LiveSource,
    StreamSource,
    WebcamSource,
    open_source,
    parse_webcam_spec,
)


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
