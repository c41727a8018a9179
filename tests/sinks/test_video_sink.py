"""VideoSink: H.264 / yuv420p fragmented MP4 with timestamps from the frames."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
from sink_scenes import scene

from vpanoptic.sinks import VideoSink
from vpanoptic.viz import overlay


def decode(path: Path) -> tuple[list[float], list[np.ndarray], dict]:
    """Frame times (seconds), RGB frames and stream facts of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "format": container.format.name,
        }
        times, images = [], []
        for frame in container.decode(stream):
            times.append(float(frame.time))
            images.append(frame.to_ndarray(format="rgb24"))
    return times, images, info


def test_writes_h264_yuv420p_mp4_with_frame_times(tmp_path):
    # Variable frame rate with gaps (dropped frames), starting at t = 5 s.
    times = [5.0, 5.033, 5.1, 5.5, 5.52, 6.0, 6.7, 7.0, 7.05, 8.0, 8.04, 8.08]
    path = tmp_path / "out.mp4"
    frames = [scene(i, t, shift=i) for i, t in enumerate(times)]
    with VideoSink(path, fps=25.0) as sink:
        for pf in frames:
            sink.write(pf)
    decoded_times, images, info = decode(path)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert "mp4" in info["format"]
    assert (info["width"], info["height"]) == (64, 48)
    assert len(images) == len(times) == sink.frames_written
    # Presentation times are the frame times, relative to the first frame.
    np.testing.assert_allclose(decoded_times, np.array(times) - times[0], atol=1e-4)
    # The pictures are the overlays, in order.
    for pf, image in zip(frames, images):
        err = np.abs(image.astype(np.int16) - overlay(pf).astype(np.int16)).mean()
        assert err < 8, err


def test_odd_size_is_padded_by_replication(tmp_path):
    path = tmp_path / "odd.mp4"
    pf = scene(0, height=47, width=63)
    with VideoSink(path, crf=0, draw={"labels": False, "contours": False}) as sink:
        sink.write(pf)
    _, images, info = decode(path)
    assert (info["width"], info["height"]) == (64, 48)
    image = images[0].astype(np.int16)
    expected = overlay(pf, labels=False, contours=False).astype(np.int16)
    assert np.abs(image[:47, :63] - expected).mean() < 4
    # The padding repeats the last row and column.
    assert np.abs(image[47, :63] - expected[46]).mean() < 6
    assert np.abs(image[:47, 63] - expected[:, 62]).mean() < 6


def test_timestamps_stay_strictly_increasing(tmp_path):
    path = tmp_path / "ties.mp4"
    times = [0.0, 0.0, 0.1, 0.05, float("nan"), 0.3]
    with VideoSink(path, fps=10.0) as sink:
        for i, t in enumerate(times):
            sink.write(scene(i, t))
    decoded, images, _ = decode(path)
    assert len(images) == len(times)
    assert all(b > a for a, b in zip(decoded, decoded[1:]))
    assert decoded[0] == 0.0 and decoded[2] == pytest.approx(0.1, abs=1e-4)
    assert decoded[-1] == pytest.approx(0.3, abs=1e-4)


def test_killed_writer_leaves_a_playable_file(tmp_path):
    path = tmp_path / "killed.mp4"
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from sink_scenes import scene
        from vpanoptic.sinks import VideoSink
        sink = VideoSink({str(path)!r}, fps=10.0, keyframe_interval=0.5)
        for i in range(40):
            sink.write(scene(i, i / 10, shift=i % 30))
        os._exit(0)  # killed: no close(), no flush, no atexit
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    times, images, info = decode(path)
    assert info["codec"] == "h264"
    assert 5 <= len(images) < 40  # every completed fragment; the encoder's tail is lost
    np.testing.assert_allclose(times, np.arange(len(images)) / 10, atol=1e-4)


def test_close_is_idempotent_and_write_after_close_fails(tmp_path):
    path = tmp_path / "v.mp4"
    sink = VideoSink(path)
    sink.write(scene(0))
    sink.close()
    sink.close()
    assert len(decode(path)[1]) == 1
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(scene(1))


def test_close_without_frames_writes_nothing(tmp_path):
    sink = VideoSink(tmp_path / "none.mp4")
    sink.close()
    sink.close()
    assert not (tmp_path / "none.mp4").exists()


def test_close_after_an_error_keeps_the_frames_written(tmp_path):
    path = tmp_path / "err.mp4"
    with pytest.raises(RuntimeError, match="upstream"):
        with VideoSink(path) as sink:
            for i in range(3):
                sink.write(scene(i))
            raise RuntimeError("upstream failure")
    assert len(decode(path)[1]) == 3

    path = tmp_path / "size.mp4"
    sink = VideoSink(path)
    sink.write(scene(0))
    with pytest.raises(ValueError, match="one frame size"):
        sink.write(scene(1, height=40))
    sink.close()
    sink.close()
    assert len(decode(path)[1]) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fps": 0}, "fps"),
        ({"crf": 60}, "crf"),
        ({"preset": "warp"}, "preset"),
        ({"keyframe_interval": -1}, "keyframe_interval"),
        ({"draw": {"colour": 1}}, "draw"),
    ],
)
def test_bad_options(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        VideoSink(tmp_path / "x.mp4", **kwargs)
    assert not (tmp_path / "x.mp4").exists()


def test_name():
    assert VideoSink("unused.mp4").name == "video"
    assert not os.path.exists("unused.mp4")
