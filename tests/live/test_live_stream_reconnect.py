"""Streams reconnect after a drop or a stall and the tracker keeps its ids.

A clip from `vpanoptic.synth.write_sequence` is cut in two MPEG-TS parts served over
loopback HTTP like a live camera. The server is killed after the first part and restarted
(or goes silent), and the pipeline (oracle model, Hungarian tracker) must carry on.
"""

from __future__ import annotations

import fractions
import http.server
import io
import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from vpanoptic.errors import SourceError
from vpanoptic.io.av_sources import StreamSource
from vpanoptic.io.formats import read_kitti_step
from vpanoptic.models.registry import build_model
from vpanoptic.pipeline import Pipeline
from vpanoptic.synth import generate, write_sequence
from vpanoptic.tracking import HungarianTracker

pytestmark = pytest.mark.timeout(60)

FRAMES = 24
CUT = 12
FPS = 10.0
SIZE = (192, 112)
SEED = 3
CHUNK = 4096
#: Probe a few packets only: the parts are shorter than FFmpeg's default probe (5 s).
QUICK_PROBE = {"probesize": "32768", "analyzeduration": "200000"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stream") / "street"
    write_sequence(root, seed=SEED, frames=FRAMES, size=SIZE, fps=FPS)
    return root


@pytest.fixture(scope="module")
def parts(clip) -> tuple[bytes, bytes]:
    """The clip's frames 0..CUT-1 and CUT..FRAMES-1 as two live MPEG-TS streams."""
    images = [f.image for f in generate(SEED, FRAMES, size=SIZE, fps=FPS)]
    return encode_ts(images[:CUT], 0), encode_ts(images[CUT:], CUT)


def encode_ts(images, first_pts: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=int(FPS), options={"g": "4", "bf": "0", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = first_pts + i, fractions.Fraction(1, int(FPS))
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return buf.getvalue()


class LiveServer:
    """Loopback HTTP server; connection k gets `plan[k]` = (bytes, then "close" | "stall"), later ones 404."""

    def __init__(self, plan, port: int = 0):
        self.plan = list(plan)
        self.served = threading.Event()  # set once a planned connection has sent all its bytes
        self.release = threading.Event()  # ends a stall
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not owner.plan:
                    self.send_error(404)
                    return
                data, then = owner.plan.pop(0)
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                for k in range(0, len(data), CHUNK):  # paced a little, like a camera
                    self.wfile.write(data[k : k + CHUNK])
                    self.wfile.flush()
                    time.sleep(0.005)
                owner.served.set()
                if then == "stall":
                    owner.release.wait(20)
                self.connection.shutdown(socket.SHUT_RDWR)  # killed mid-stream: no clean end

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def kill(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def track_of_instances(pf, gt_dir: Path) -> dict[int, int]:
    """gt instance id → track id of the segment covering most of its pixels."""
    _, instance = read_kitti_step(gt_dir / f"{pf.frame.index:06d}.png")
    id_map = pf.id_map_numpy()
    tracks = dict(zip(pf.segment_ids.tolist(), pf.track_ids.tolist()))
    out = {}
    for inst in np.unique(instance[instance > 0]):
        seg_ids, counts = np.unique(id_map[instance == inst], return_counts=True)
        seg = int(seg_ids[np.argmax(counts)])
        if tracks.get(seg, -1) > 0:
            out[int(inst)] = tracks[seg]
    return out


def run_stream(clip, url, source, on_frame=None):
    model = build_model("oracle", device="cpu", gt=str(clip / "gt"))
    seen = []

    def record(pf):
        seen.append((pf.frame.index, pf.frame.time, track_of_instances(pf, clip / "gt")))
        if on_frame is not None:
            on_frame(pf)

    pipeline = Pipeline(source, model, HungarianTracker(), policy="every", max_frames=FRAMES, on_frame=record)
    stats = pipeline.run()
    return stats, seen


@pytest.fixture(scope="module")
def baseline(clip, parts):
    """Track ids when the same stream arrives in one piece, without a drop."""
    server = LiveServer([(parts[0] + parts[1], "close")])
    source = StreamSource(f"http://127.0.0.1:{server.port}/live.ts", read_timeout_s=5.0, options=QUICK_PROBE,
                          reconnect=True, backoff_initial_s=0.1, give_up_s=10.0)  # drains the decoder at the end
    try:
        _, seen = run_stream(clip, None, source)
    finally:
        server.kill()
    return [s[2] for s in seen]


def check_continuity(seen, baseline):
    assert [s[0] for s in seen] == list(range(FRAMES))  # every frame, indices go on across the drop
    times = [s[1] for s in seen]
    assert np.allclose(np.diff(times), 1.0 / FPS, atol=1e-3)  # the timeline is stitched, not restarted
    before, after = seen[CUT - 1][2], seen[CUT][2]
    persistent = set(before) & set(after)
    assert persistent, "the clip should have objects visible across the cut"
    assert {i: before[i] for i in persistent} == {i: after[i] for i in persistent}
    # The drop changed nothing: every frame has the ids of an uninterrupted run.
    assert [s[2] for s in seen] == baseline


def test_server_killed_mid_stream_and_restarted(clip, parts, baseline):
    first = LiveServer([(parts[0], "close")])
    port = first.port
    url = f"http://127.0.0.1:{port}/live.ts"
    source = StreamSource(url, reconnect=True, read_timeout_s=3.0, open_timeout_s=2.0,
                          backoff_initial_s=0.1, backoff_max_s=0.4, give_up_s=15.0)
    second = []

    def restart():
        first.served.wait(20)
        first.kill()
        time.sleep(0.8)  # the stream is down: reconnection attempts are refused meanwhile
        second.append(LiveServer([(parts[1], "close")], port=port))

    restarter = threading.Thread(target=restart, daemon=True)
    restarter.start()
    try:
        stats, seen = run_stream(clip, url, source)
    finally:
        restarter.join(10)
        for server in second:
            server.kill()
    assert source.reconnects >= 1 and stats.reconnects == source.reconnects
    assert stats.summary()["reconnects"] == source.reconnects
    check_continuity(seen, baseline)


def test_stalled_stream_is_noticed_and_reconnected(clip, parts, baseline):
    server = LiveServer([(parts[0], "stall"), (parts[1], "close")])
    url = f"http://127.0.0.1:{server.port}/live.ts"
    source = StreamSource(
        url, reconnect=True, read_timeout_s=1.0, backoff_initial_s=0.1, give_up_s=10.0, options=QUICK_PROBE
    )
    try:
        stats, seen = run_stream(clip, url, source)
    finally:
        server.kill()
    assert source.reconnects == 1 and stats.reconnects == 1
    check_continuity(seen, baseline)


def test_watchdog_reconnects_when_packets_decode_to_nothing(parts, caplog):
    """Data keeps coming but no frame decodes (a broken encoder): the watchdog reconnects."""
    server = LiveServer([(parts[0], "stall"), (parts[1], "close")])
    url = f"http://127.0.0.1:{server.port}/live.ts"
    source = StreamSource(url, reconnect=True, read_timeout_s=10.0, stall_timeout_s=0.3,
                          backoff_initial_s=0.05, give_up_s=10.0, options=QUICK_PROBE)
    real = source._decode_next
    good_calls = 5

    def broken():  # after a few packets the first connection only "decodes" to nothing
        nonlocal good_calls
        if source.reconnects == 0 and good_calls == 0 and not source._ended:
            time.sleep(0.01)
            return []
        good_calls = max(0, good_calls - 1)
        return real()

    source._decode_next = broken
    frames, after = [], 0
    started = time.monotonic()
    try:
        with source:
            for frame in source:
                frames.append(frame)
                after += source.reconnects == 1
                if after == FRAMES - CUT:
                    break
    finally:
        server.kill()
    assert source.reconnects == 1 and "no frame for 0.3 s" in caplog.text
    assert time.monotonic() - started < 10.0  # not the 10 s read timeout
    assert [f.index for f in frames] == list(range(len(frames)))


def test_stream_gives_up_after_the_limit_with_one_line_error(parts):
    server = LiveServer([(parts[0], "close")])
    url = f"http://127.0.0.1:{server.port}/live.ts"
    source = StreamSource(url, reconnect=True, read_timeout_s=2.0, backoff_initial_s=0.1,
                          backoff_max_s=0.2, give_up_s=1.0)
    frames = []
    started = time.monotonic()
    try:
        with source, pytest.raises(SourceError, match=r"^lost stream .*reconnection attempts in \d+ s failed"):
            for frame in source:
                frames.append(frame)
    finally:
        server.kill()
    assert len(frames) == CUT and time.monotonic() - started < 10
    assert source.reconnects == 0


def test_close_from_another_thread_ends_the_back_off(parts):
    server = LiveServer([(parts[0], "close")])
    url = f"http://127.0.0.1:{server.port}/live.ts"
    source = StreamSource(url, reconnect=True, backoff_initial_s=0.5, backoff_max_s=0.5, give_up_s=60.0)
    frames = []
    done = threading.Event()

    def consume():
        with source:
            for frame in source:
                frames.append(frame)
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        server.served.wait(10)
        time.sleep(0.5)  # in back-off now (404 answers)
        source.close()
        assert done.wait(5)
    finally:
        server.kill()
    assert len(frames) == CUT


def test_reconnect_parameters_are_validated():
    with pytest.raises(SourceError, match="backoff_initial_s is 0"):
        StreamSource("http://127.0.0.1:1/x", reconnect=True, backoff_initial_s=0)
    with pytest.raises(SourceError, match="backoff_factor is 0.5"):
        StreamSource("http://127.0.0.1:1/x", reconnect=True, backoff_factor=0.5)
    with pytest.raises(SourceError, match="stall_timeout_s is 0 for http://u:\\*\\*\\*@127.0.0.1:1/x"):
        StreamSource("http://u:secret@127.0.0.1:1/x", reconnect=True, stall_timeout_s=0)
    assert StreamSource("http://127.0.0.1:1/x", read_timeout_s=3.0).stall_timeout_s == 3.0


def test_recording_over_http_ends_at_its_end_when_reconnecting(tmp_path):
    import functools

    images = [f.image for f in generate(SEED, CUT, size=SIZE, fps=FPS)]
    # faststart: the index first, so FFmpeg needs no range request (the test server has none)
    with av.open(str(tmp_path / "video.mp4"), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=int(FPS))
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        source = StreamSource(f"http://127.0.0.1:{server.server_address[1]}/video.mp4", reconnect=True)
        with source:
            frames = list(source)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert [f.index for f in frames] == list(range(CUT)) and source.reconnects == 0


def test_open_input_sets_up_streams_from_the_config():
    from vpanoptic.config import InputConfig
    from vpanoptic.job import open_input

    source = open_input("rtsp://127.0.0.1:1/cam", InputConfig(stall_timeout_s=2.5, reconnect_give_up_s=7.0))
    assert isinstance(source, StreamSource) and source.reconnect
    assert (source.stall_timeout_s, source.read_timeout_s, source.give_up_s) == (2.5, 2.5, 7.0)
    assert source.options == {"rtsp_transport": "tcp"}
    assert not open_input("rtsp://127.0.0.1:1/cam", InputConfig(reconnect=False)).reconnect


def test_open_input_passes_options_and_leaves_webcam_rate_alone(tmp_path):
    from vpanoptic.config import load_config
    from vpanoptic.job import open_input

    cfg = load_config(None, ["input.options.video_size=1280x720"]).input
    cam = open_input("/dev/video7", cfg)
    assert cam.options == {"video_size": "1280x720"}  # no framerate from input.fps (image folders' rate)
    cam = open_input("/dev/video7", load_config(None, ["input.options.framerate=30"]).input)
    assert cam.options == {"framerate": "30"}
    with pytest.raises(SourceError, match="do not apply to image directory"):
        open_input(str(tmp_path), cfg)
