"""Speed (and quality per millisecond) of the default model, `vpanoptic-street`, on this machine.

    python benchmarks/model.py [--frames 100] [--size 640x360] [--skip-e2e] [--options default,...]

1. End to end: `vpanoptic run` (the `run_video` it calls) on a 640x360 synthetic H.264 clip
   with the default config — tracking on — once with the default outputs (video, png, coco,
   jsonl) and once with the annotated video only; prints FPS and latency.
2. Model only: ms/frame of `predict` (batch 1, decoded frames), split into network and
   grouping + fusion, and the PQ of its output on the clip's ground truth (the clip's world
   seed, 0, is never used in training), for each option set: torch threads, input size,
   output scale, backend (eager / ONNX Runtime / torch.compile) and channels_last.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from vpanoptic.config import load_config
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.eval import PanopticQuality
from vpanoptic.io.formats import read_kitti_step
from vpanoptic.io.sources import open_source
from vpanoptic.job import run_video
from vpanoptic.models.registry import build_model
from vpanoptic.models.street.inference import StreetModel
from vpanoptic.runtime import configure_threads
from vpanoptic.synth import write_sequence

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

# name → (torch threads, model options); each varies one thing from the default.
OPTION_SETS: dict[str, tuple[int, dict[str, Any]]] = {
    "default": (1, {}),
    "threads=2": (2, {}),
    "input 384x216": (1, {"input_size": "384x216"}),
    "input 448x252": (1, {"input_size": "448x252"}),
    "input 640x360": (1, {"input_size": "640x360"}),
    "output_scale 1": (1, {"output_scale": 1.0}),
    "output_scale 0.25": (1, {"output_scale": 0.25}),
    "channels_last": (1, {"channels_last": True}),
    "onnx": (1, {"backend": "onnx"}),
    "onnx threads=2": (2, {"backend": "onnx"}),
    "compile": (1, {"backend": "compile"}),
}


def model_only(frames, gts, threads: int, options: dict[str, Any], repeats: int) -> dict:
    configure_threads(threads)
    model = build_model("vpanoptic-street", device="cpu", **options)
    assert isinstance(model, StreetModel)
    pred = model.predictor
    for f in frames[:3]:  # warm-up (and compilation for backend=compile)
        model.predict([f])
    net_s = predict_s = 0.0
    pq = PanopticQuality(num_classes=KITTI_STEP.num_classes, things_list=KITTI_STEP.thing_ids)
    t_all = time.perf_counter()
    for r in range(repeats):
        for f, gt in zip(frames, gts):
            t0 = time.perf_counter()
            with torch.inference_mode():
                x = pred.preprocess([f.image])
                pred._forward(x)
            t1 = time.perf_counter()
            net_s += t1 - t0
            pf = model.predict([f])[0]
            predict_s += time.perf_counter() - t1  # the whole predict(): preprocess, network, grouping
            if r == 0:
                pq.update(gt, pf.to_labels(instances="segment"))
    n = len(frames) * repeats
    total = predict_s / n
    net = net_s / n
    return {"total_ms": total * 1e3, "net_ms": net * 1e3, "group_ms": max(0.0, total - net) * 1e3,
            "PQ": pq.result()["PQ"], "wall": time.perf_counter() - t_all}


def end_to_end(video: str, save: str, frames: int, tmp: Path) -> dict:
    cfg = load_config(None, [f"output.save={save}"])
    summary = run_video(video, tmp / f"e2e-{save.replace(',', '-')}", cfg)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--repeats", type=int, default=1, help="passes over the clip per option set")
    ap.add_argument("--options", default=",".join(OPTION_SETS), help="comma-separated option sets to time")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clip = tmp / "clip"
        write_sequence(clip, seed=0, frames=args.frames, size=(w, h), fps=10.0)
        video = str(clip / "video.mp4")
        print(
            f"clip: {args.frames} frames {w}x{h} (synthetic street, seed 0); {CORES} cores; torch {torch.__version__}"
        )
        if not args.skip_e2e:
            print("\nend to end, `vpanoptic run` defaults (model vpanoptic-street, tracker hungarian, "
                  f"threads {load_config().model.threads or 'default'}):")
            for save in ("video,png,coco,jsonl", "video"):
                s = end_to_end(video, save, args.frames, tmp)
                lat = s["latency_ms"]
                print(f"  --save {save:<22} {s['fps']:6.1f} FPS  latency p50 {lat['p50']} ms  p95 {lat['p95']} ms  "
                      f"torch threads {s['torch_threads']}  stage ms {s.get('stage_ms')}")
        with open_source(video) as src:
            frames = list(src)
        gts = [read_kitti_step(clip / "gt" / f"{f.index:06d}.png") for f in frames]
        print("\nmodel only (batch 1, decoded frames):")
        print(
            f"  {'option set':<20} {'threads':>7} {'ms/frame':>9} {'network':>8} {'grouping':>9} {'FPS':>6} {'PQ':>6}"
        )
        for name in [n for n in args.options.split(",") if n]:
            threads, options = OPTION_SETS[name]
            try:
                r = model_only(frames, gts, threads, options, args.repeats)
            except Exception as exc:  # an optional backend that is not installed / not supported here
                print(f"  {name:<20} {threads:>7}  unavailable: {type(exc).__name__}: {str(exc)[:100]}")
                continue
            print(f"  {name:<20} {threads:>7} {r['total_ms']:9.1f} {r['net_ms']:8.1f} {r['group_ms']:9.1f} "
                  f"{1000 / r['total_ms']:6.1f} {r['PQ']:6.3f}", flush=True)


if __name__ == "__main__":
    main()
