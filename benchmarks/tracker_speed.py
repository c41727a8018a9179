"""Tracker speed: ms/frame at 1280x720 with 10, 50 and 200 moving objects (torch threads 1).

    nice -n 15 python benchmarks/tracker_speed.py [--frames 60] [--size 1280x720] [--objects 10,50,200]
        [--threads 1,2]

Objects are rectangles (half cars, half people; each painted in its own colour, for the
colour cue) drifting over a stuff background (road, building, sky) while the camera pans
(the textured image shifts, so camera-motion compensation has real work). Prints the mean and
p95 wall-clock ms/frame of `update()` and its CPU ms/frame (all threads of the process) for
the hungarian tracker with and without camera-motion compensation (fitted on a second thread,
the default, or on the calling one), the camera-motion estimate alone, and the greedy
baseline, and how the time scales with the number of objects, with the machine's load
average before and after (timings on a shared machine vary with it). With ultralytics
installed (the `bench` extra), its BYTETracker runs on the same frames (fed one box per thing
segment, box extraction and id paint-back included: `benchmarks/peers.py`). A last table
times the default tracker with torch set to each of `--threads` threads by the caller:
the tracker's cost should not depend on it.
Goal: <= 2 ms/frame at 1280x720 with 50 objects on this CPU for association.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.runtime import configure_threads
from vpanoptic.tracking import CameraMotionEstimator, build_tracker
from vpanoptic.types import Frame, PanopticFrame

CAR, PERSON, ROAD, BUILDING, SKY = 13, 11, 0, 2, 10


def make_clip(n_objects: int, frames: int, width: int, height: int, seed: int = 0) -> list[PanopticFrame]:
    """Synthetic panoptic frames: `n_objects` rectangles moving at constant speed; a panning camera."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (height // 8 + 1, (width + frames * 4) // 8 + 1, 3), np.uint8)
    texture = np.repeat(np.repeat(texture, 8, 0), 8, 1)  # blocky: corners to track
    sizes = rng.uniform(0.02, 0.08, (n_objects, 2)) * [height, width]
    pos = rng.uniform(0, 1, (n_objects, 2)) * [height * 0.8, width * 0.8]
    vel = rng.normal(0, 3, (n_objects, 2))
    cats = np.where(np.arange(n_objects) % 2 == 0, CAR, PERSON)
    paint = rng.integers(0, 255, (n_objects, 3)).astype(np.uint16)  # each object's own colour
    out = []
    for k in range(frames):
        semantic = np.full((height, width), ROAD, np.int32)
        semantic[: height // 3] = SKY
        semantic[height // 3: height // 2] = BUILDING
        instance = np.zeros((height, width), np.int32)
        image = np.ascontiguousarray(texture[:height, 4 * k: 4 * k + width])
        for j in range(n_objects):
            y0, x0 = (pos[j] + vel[j] * k - 4 * np.array([0, k])).astype(int)
            y1, x1 = y0 + int(sizes[j, 0]) + 2, x0 + int(sizes[j, 1]) + 2
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
            if y1 > y0 and x1 > x0:
                semantic[y0:y1, x0:x1] = cats[j]
                instance[y0:y1, x0:x1] = j + 1
                # painted in its own colour, a little of the texture showing through
                image[y0:y1, x0:x1] = ((3 * paint[j] + image[y0:y1, x0:x1]) // 4).astype(np.uint8)
        pf = PanopticFrame.from_labels(Frame(k, k, k / 30.0, 0.0, image), semantic, instance, KITTI_STEP)
        pf.track_ids[:] = -1
        # a model's output: scrambled segment order, id map as a tensor
        pf.id_map = torch.from_numpy(pf.id_map)
        out.append(pf)
    return out


def time_tracker(clip, make) -> tuple[float, float, float]:
    """(mean, p95) wall-clock ms per `update()` over the clip, after one warm-up pass, and the
    mean CPU ms per `update()` (every thread of the process)."""
    for _ in range(2):
        tracker = make()
        times = []
        cpu0 = time.process_time()
        for pf in clip:
            t0 = time.perf_counter()
            tracker.update(pf)
            times.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu0) / len(clip) * 1000
    ms = np.array(times[1:]) * 1000
    return float(ms.mean()), float(np.percentile(ms, 95)), cpu


def time_cmc(clip) -> float:
    est = CameraMotionEstimator()
    times = []
    for pf in clip:
        t0 = time.perf_counter()
        est.estimate(pf.frame.image)
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:]) * 1000)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--objects", default="10,50,200")
    parser.add_argument("--threads", default="1,2", help="torch thread counts the caller sets (last table)")
    args = parser.parse_args(argv)
    configure_threads(1)  # torch, OpenCV and BLAS, as the pipeline sets them on this machine
    width, height = (int(v) for v in args.size.lower().split("x"))
    rows = {
        "hungarian (default, camera motion on)": lambda: build_tracker("hungarian"),
        "hungarian, camera motion fitted on the calling thread": lambda: build_tracker("hungarian", cmc_parallel=False),
        "hungarian, camera motion off": lambda: build_tracker("hungarian", camera_motion=False),
        "hungarian, camera motion off, appearance off": lambda: build_tracker(
            "hungarian", camera_motion=False, appearance_weight=0.0, appearance_gate=0.0, reid_distance=0.0
        ),
        "hungarian, full resolution, cmc off": lambda: build_tracker("hungarian", camera_motion=False, max_pixels=0),
        "greedy baseline": lambda: build_tracker("greedy"),
    }
    try:
        from peers import _ultralytics

        bytetrack = _ultralytics("bytetrack")
        rows["ultralytics BYTETracker (boxes of the segments)"] = lambda: bytetrack(30.0)
    except ImportError as e:
        print(f"ultralytics BYTETracker left out: {e} (pip install 'vpanoptic[bench]')", file=sys.stderr)
    counts = [int(n) for n in args.objects.split(",")]
    load_before = os.getloadavg()
    results = {name: [] for name in rows}
    cmc = []
    for n in counts:
        clip = make_clip(n, args.frames, width, height)
        for name, make in rows.items():
            results[name].append(time_tracker(clip, make))
        cmc.append(time_cmc(clip))
    load = ", ".join(f"{a:.2f}" for a in load_before[:1] + os.getloadavg()[:1])
    print(f"tracker ms/frame at {width}x{height}, torch threads {torch.get_num_threads()}, {args.frames} frames; "
          f"mean (p95) wall clock, CPU of all threads; 1-min load average before, after: {load}")
    print("| tracker | " + " | ".join(f"{n} objects" for n in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for name, vals in results.items():
        print(f"| {name} | " + " | ".join(f"{m:.2f} ({p:.2f}), CPU {c:.2f}" for m, p, c in vals) + " |")
    print("| camera-motion estimate alone | " + " | ".join(f"{m:.2f}" for m in cmc) + " |")
    base = results["hungarian, camera motion off"]
    if len(counts) > 1:
        slope = (base[-1][0] - base[0][0]) / (counts[-1] - counts[0])
        print(f"scaling (camera motion off): {base[0][0]:.2f} ms + {1000 * slope:.1f} us per object")
    threads = [int(t) for t in args.threads.split(",")]
    clip = make_clip(counts[len(counts) // 2], args.frames, width, height)
    print(f"\nhungarian (default) with {counts[len(counts) // 2]} objects, torch threads set by the caller:")
    print("| torch threads | ms/frame (p95), CPU |\n|---|---|")
    for n in threads:
        torch.set_num_threads(n)
        m, p, c = time_tracker(clip, lambda: build_tracker("hungarian"))
        print(f"| {n} | {m:.2f} ({p:.2f}), CPU {c:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
