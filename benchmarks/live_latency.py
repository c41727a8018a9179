"""Live latency: a simulated camera through the live path for a fixed time (default 2 minutes).

    nice -n 15 python benchmarks/live_latency.py [--duration 120] [--fps 30] [--size 640x360]
        [--model-delay-ms 0] [--model oracle|vpanoptic-street|...] [--headless OUT.mp4]

A `LiveSource` delivers a synthetic street clip (looped) at `--fps` like a camera; the
oracle model segments it (plus `--model-delay-ms` of sleep per frame, to stand in for a
slower network) or, with `--model`, a real model such as the default network, the Hungarian
tracker tracks, and the display sink composes the overlay and HUD (discarded, or encoded to
`--headless`). The run uses the live default: frame policy ``latest``.

Prints end-to-end latency (capture → display) p50/p95/p99/max, the drop rate, display FPS,
model time, the bound the tests hold it to (model time + 2 frame intervals) and whether
latency grows: the median of the last third of the run against the first third.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vpanoptic.config import load_config
from vpanoptic.io.sources import LiveSource
from vpanoptic.live import run_live
from vpanoptic.models.base import PanopticModel
from vpanoptic.models.registry import build_model
from vpanoptic.runtime import configure_threads
from vpanoptic.sinks.window import VideoFileDisplay
from vpanoptic.synth import generate, write_sequence

LOOP_FRAMES = 100  # frames rendered once and looped by the camera


class NullDisplay:
    """A display that shows nothing (the picture is still composed)."""

    def show(self, image_bgr) -> None:
        pass

    def poll_key(self, wait_ms: int) -> int:
        return -1

    def close(self) -> None:
        pass


class LoopedOracle(PanopticModel):
    """The oracle model on a looped clip: frame k is clip frame k % LOOP_FRAMES, plus a delay."""

    def __init__(self, gt: Path, delay_s: float):
        self.inner = build_model("oracle", device="cpu", gt=str(gt))
        self.meta, self.device, self.delay_s = self.inner.meta, self.inner.device, delay_s

    def predict(self, frames):
        from dataclasses import replace

        if self.delay_s:
            time.sleep(self.delay_s * len(frames))
        looped = [replace(f, index=f.index % LOOP_FRAMES) for f in frames]
        outputs = self.inner.predict(looped)
        for f, pf in zip(frames, outputs):
            pf.frame = f  # keep the camera's index and capture time
        return outputs

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of simulated live video (default 120)")
    parser.add_argument("--fps", type=float, default=30.0, help="camera rate")
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--model-delay-ms", type=float, default=0.0, help="extra model time per frame (oracle)")
    parser.add_argument("--model", default="oracle",
                        help="oracle (default: looped ground truth) or a registered model, e.g. vpanoptic-street")
    parser.add_argument("--headless", help="also encode the displayed pictures to this MP4")
    parser.add_argument("--trace", help="write per-frame (capture time s, latency ms) to this CSV")
    args = parser.parse_args()
    load_before = os.getloadavg()
    width, height = (int(v) for v in args.size.lower().split("x"))
    threads = configure_threads(0)

    with tempfile.TemporaryDirectory() as tmp:
        write_sequence(Path(tmp) / "clip", seed=0, frames=LOOP_FRAMES, size=(width, height), fps=args.fps)
        images = [f.image for f in generate(0, LOOP_FRAMES, size=(width, height), fps=args.fps)]
        frames = round(args.duration * args.fps)
        source = LiveSource(lambda i: images[i % LOOP_FRAMES], fps=args.fps, num_frames=frames)
        model: PanopticModel
        if args.model == "oracle":
            model = LoopedOracle(Path(tmp) / "clip" / "gt", args.model_delay_ms / 1000.0)
        else:
            model = build_model(args.model, device="cpu")
        display = VideoFileDisplay(args.headless, fps=args.fps) if args.headless else NullDisplay()
        latencies = []  # (capture time since start s, capture → display ms)

        def shown(pf) -> None:
            latencies.append((pf.frame.time, 1000.0 * (time.monotonic() - pf.frame.capture_time)))

        cfg = load_config(None, ["output.save=[]"])
        summary = run_live(source, cfg, display=display, model=model, on_frame=shown)
        model.close()

    lat = np.asarray([ms for _, ms in latencies])
    if args.trace:
        Path(args.trace).write_text("capture_s,latency_ms\n" + "".join(f"{t:.4f},{ms:.2f}\n" for t, ms in latencies))
    third = max(1, lat.size // 3)
    model_ms = summary["stage_ms"]["inference"]
    interval_ms = 1000.0 / args.fps
    captured = summary["frames"] + summary["dropped"]
    print(f"live run: {args.duration:g} s at {args.fps:g} fps, {width}x{height}, "
          f"{'oracle + ' + format(args.model_delay_ms, 'g') + ' ms' if args.model == 'oracle' else args.model}, "
          f"torch threads {threads}, policy {summary['policy']}")
    print(f"frames captured {captured}, shown {summary['frames']}, dropped {summary['dropped']} "
          f"({100.0 * summary['dropped'] / max(1, captured):.1f} %), display {summary['fps']} FPS, "
          f"queue high water {summary['queue_high_water']}")
    print(f"latency capture→display ms: p50 {np.percentile(lat, 50):.1f}  p95 {np.percentile(lat, 95):.1f}  "
          f"p99 {np.percentile(lat, 99):.1f}  max {lat.max():.1f}")
    print(f"model {model_ms:.1f} ms/frame; bound model + 2 frame intervals = {model_ms + 2 * interval_ms:.1f} ms")
    print(f"latency median first third {np.median(lat[:third]):.1f} ms, last third {np.median(lat[-third:]):.1f} ms "
          f"(growth {np.median(lat[-third:]) - np.median(lat[:third]):+.1f} ms)")
    print("stage ms:", {k: v for k, v in summary["stage_ms"].items()})
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
