"""Pipeline throughput: each stage alone, then end to end, with 1 and 2 torch threads.

    python benchmarks/pipeline.py [--frames 150] [--size 640x360] [--model oracle] [--input VIDEO]

Prints decode-only, model-only, tracker-only and sinks-only FPS, end-to-end FPS, and the
ratio end-to-end / slowest stage (goal >= 0.9: the threads overlap the stages, so the
pipeline should run at the speed of its slowest stage). When the stages together need more
CPU than the machine has (a 2-core machine writing four outputs), the slowest stage is out
of reach; the ratio to the core bound (cores / sum of per-frame stage times) is printed too.
Without --input it renders a synthetic clip with `vpanoptic synth` into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from vpanoptic.io.sources import open_source
from vpanoptic.models.registry import build_model
from vpanoptic.pipeline import Pipeline
from vpanoptic.runtime import configure_threads
from vpanoptic.sinks import build_sinks
from vpanoptic.synth import write_sequence
from vpanoptic.tracking import HungarianTracker

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fps(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def measure(video: str, model_name: str, threads: int, out_dir: Path, save: tuple[str, ...]) -> dict:
    configure_threads(threads)
    model = build_model(model_name, device="cpu", input=video)

    # decode only
    with open_source(video) as src:
        t0 = time.perf_counter()
        frames = list(src)
        t_decode = time.perf_counter() - t0
    n = len(frames)

    # model only (batch 1, as the pipeline runs it by default)
    with torch.inference_mode():
        t0 = time.perf_counter()
        outputs = [model.predict([f])[0] for f in frames]
        t_model = time.perf_counter() - t0

    # tracker only
    tracker = HungarianTracker(device=model.device)
    t0 = time.perf_counter()
    tracked = [tracker.update(pf) for pf in outputs]
    t_track = time.perf_counter() - t0

    # sinks only
    sink_dir = out_dir / f"sinks-{threads}"
    sinks = build_sinks(save, sink_dir, fps=10.0)
    t0 = time.perf_counter()
    for pf in tracked:
        host = pf.to_numpy()
        for s in sinks:
            s.write(host)
    for s in sinks:
        s.close()
    t_sinks = time.perf_counter() - t0

    # end to end
    sinks = build_sinks(save, out_dir / f"e2e-{threads}", fps=10.0)
    p = Pipeline(open_source(video), model, HungarianTracker(device=model.device), sinks)
    t0 = time.perf_counter()
    stats = p.run()
    t_e2e = time.perf_counter() - t0
    model.close()
    stages = {
        "decode": fps(n, t_decode),
        "model": fps(n, t_model),
        "tracker": fps(n, t_track),
        "sinks": fps(n, t_sinks),
    }
    slowest = min(stages, key=lambda stage: stages[stage])
    e2e = fps(stats.processed, t_e2e)
    # With C cores the stages cannot together run faster than C / (sum of per-frame times).
    cpu_bound = CORES * n / (t_decode + t_model + t_track + t_sinks)
    bound = min(stages[slowest], cpu_bound)
    return {"frames": n, **stages, "end_to_end": e2e, "slowest": slowest, "ratio": e2e / stages[slowest],
            "cpu_bound": cpu_bound, "ratio_bound": e2e / bound}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--model", default="oracle")
    ap.add_argument("--input", help="video to use instead of a synthetic clip")
    ap.add_argument("--save", default="video,png,coco,jsonl")
    ap.add_argument("--threads", default="1,2", help="torch thread counts to compare")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    save = tuple(s for s in args.save.split(",") if s)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = args.input
        if video is None:
            t0 = time.perf_counter()
            write_sequence(tmp / "clip", seed=0, frames=args.frames, size=(w, h), fps=10.0)
            print(f"rendered synthetic clip: {args.frames} frames {w}x{h} in {time.perf_counter() - t0:.1f} s")
            video = str(tmp / "clip" / "video.mp4")
        print(
            f"input {video}; model {args.model}; outputs {','.join(save)}; "
            f"cpu threads available {torch.get_num_threads()}"
        )
        header = (f"{'threads':>7} {'frames':>6} {'decode':>8} {'model':>8} {'tracker':>8} {'sinks':>8} {'e2e':>8}  "
                  f"slowest   e2e/slowest  {CORES}-core bound  e2e/bound")
        print(header)
        for threads in (int(t) for t in args.threads.split(",")):
            r = measure(video, args.model, threads, tmp, save)
            print(
                f"{threads:>7} {r['frames']:>6} {r['decode']:>8.1f} {r['model']:>8.1f} {r['tracker']:>8.1f} "
                f"{r['sinks']:>8.1f} {r['end_to_end']:>8.1f}  {r['slowest']:<8} {r['ratio']:>6.2f}"
                f"       {r['cpu_bound']:>8.1f}      {r['ratio_bound']:>5.2f}"
            )
        print("(frames per second; the core bound is cores / sum of the stages' per-frame times: the stages")
        print(" overlap on separate threads, but all of them together cannot use more CPU than the machine has)")


if __name__ == "__main__":
    main()
