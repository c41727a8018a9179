"""Batch throughput: videos/hour with 1 and N worker processes, and the speed-up.

    nice -n 15 python benchmarks/batch.py [--videos 6] [--frames 60] [--size 640x360]
        [--workers 1,2] [--save video,png,coco,jsonl] [--model oracle]

Renders one synthetic clip with `vpanoptic synth`, copies it `--videos` times into a
folder (the oracle model reads the clip's ground truth), and runs `run_batch` on it once
per worker count, from scratch each time. Prints, per worker count: wall time (worker
start-up included), videos/hour, frames/s, torch threads per worker, and the speed-up over
the first count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from vpanoptic.batch import run_batch
from vpanoptic.config import load_config
from vpanoptic.synth import write_sequence

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60, help="frames per video")
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to compare")
    parser.add_argument("--save", default="video,png,coco,jsonl", help="outputs written per video")
    parser.add_argument("--model", default="oracle", help="model name (the oracle reads the clip's ground truth)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    counts = [int(w) for w in args.workers.split(",")]
    cfg = load_config(None, [f"output.save={args.save}", f"model.name={args.model}"])

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clip = tmp / "clip"
        write_sequence(clip, seed=0, frames=args.frames, size=(width, height))
        folder = tmp / "videos"
        folder.mkdir()
        shutil.copytree(clip / "gt", folder / "gt")
        for i in range(args.videos):
            shutil.copy(clip / "video.mp4", folder / f"drive{i:03d}.mp4")
        print(f"{args.videos} videos x {args.frames} frames ({width}x{height}), outputs {args.save}, "
              f"{CORES} cores, model {args.model}")
        base = None
        for workers in counts:
            out = tmp / f"out{workers}"
            report = run_batch(folder, out, cfg, workers=workers)
            wall = report["wall_time_s"]
            base = base or wall
            assert report["ok"] == args.videos, report
            print(f"workers {workers} (x {report['torch_threads_per_worker']} torch threads): {wall:.1f} s, "
                  f"{report['videos_per_hour']:.0f} videos/hour, {report['frames'] / wall:.1f} frames/s, "
                  f"speed-up x{base / wall:.2f}")
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
