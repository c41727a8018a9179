"""Tests for vpanoptic.io.sources: spec parsing, files, rotation, damaged files.

All media are made here with PyAV / OpenCV (tiny 64x48 clips, a few dozen frames).
"""

from __future__ import annotations

import fractions
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from source_helpers import (
    FPS,
    FRAMES,
    HEIGHT,
    LOSSY_MAE,
    NUM_FRAMES,
    WIDTH,
    check_frames,
    mae,
    nearest,
    read_all,
)

from vpanoptic.errors import SourceError, UserError
from vpanoptic.io.sources import (
    FileSource,
    ImageDirSource,
    LiveSource,
    StreamSource,
    WebcamSource,
    apply_display_matrix,
    display_matrix_rotation,
    open_source,
    source_kind,
)


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
