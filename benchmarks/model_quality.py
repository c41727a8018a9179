"""Quality of a model on held-out synthetic sequences, through the whole `vpanoptic run` path.

    python benchmarks/model_quality.py [--seeds 1001,1002] [--scenarios street,crossing,...]
        [--frames 40] [--model vpanoptic-street] [--set model.options.input_size=320x180 ...]

For every (seed, scenario) it renders a clip with `vpanoptic synth` (H.264 video + KITTI-STEP
ground truth), runs `vpanoptic run` on the video with the default tracker and config (PNG
output), and scores the PNGs against the ground truth: image PQ (deeplab2 rules, every frame)
and STQ (per sequence), KITTI-STEP classes (things: person, car). As in KITTI-STEP, things
lower than 25/375 of the frame height (24 px at 360) are crowd in the ground truth
(`--min-instance-height 0` scores every object as a tracked instance). The default seeds are below
1 000 000, a range the training never draws world seeds from (`models.street.data.EVAL_SEED_RANGE`),
and differ from the validation seeds used during training (101-106).

The same numbers for one clip with the CLI:

    vpanoptic synth clip --seed 1001 --frames 40 --scenario street
    vpanoptic run clip/video.mp4 -o out --save png
    vpanoptic eval clip/gt out/panoptic_kitti --metrics stq,pq
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vpanoptic.config import load_config
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.eval import PanopticQuality, STQuality
from vpanoptic.io.formats import read_kitti_step
from vpanoptic.job import run_video
from vpanoptic.synth import SCENARIOS, default_min_height, write_sequence

DEFAULT_SEEDS = "1001,1002"
DEFAULT_SCENARIOS = ",".join(s for s in SCENARIOS)


def score(clip: Path, pred_dir: Path, frames: int, pq_all: PanopticQuality, stq_all: STQuality, seq: str) -> dict:
    pq = PanopticQuality(num_classes=KITTI_STEP.num_classes, things_list=KITTI_STEP.thing_ids)
    stq = STQuality(num_classes=KITTI_STEP.num_classes, things_list=KITTI_STEP.thing_ids)
    for i in range(frames):
        gt = read_kitti_step(clip / "gt" / f"{i:06d}.png")
        pred = read_kitti_step(pred_dir / f"{i:06d}.png")
        for m in (pq, pq_all):
            m.update(gt, pred)
        stq.update(gt, pred, sequence_id=0)
        stq_all.update(gt, pred, sequence_id=seq)
    r, s = pq.result(), stq.result()
    return {"PQ": r["PQ"], "PQ_th": r["PQ_things"], "PQ_st": r["PQ_stuff"], "STQ": s["STQ"], "AQ": s["AQ"],
            "SQ": s["SQ"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default=DEFAULT_SEEDS)
    ap.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--model", default="vpanoptic-street")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for `run`")
    ap.add_argument("--min-instance-height", type=float, default=None, metavar="PX",
                    help="ground truth: things lower than this are crowd (default: KITTI's rule, 24 px at "
                         "360; 0 = every object is a tracked instance)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    seeds = [int(s) for s in args.seeds.split(",")]
    scenarios = [s for s in args.scenarios.split(",") if s]
    cfg = load_config(None, [f"model.name={args.model}", "output.save=png", *args.set])
    pq_all = PanopticQuality(num_classes=KITTI_STEP.num_classes, things_list=KITTI_STEP.thing_ids)
    stq_all = STQuality(num_classes=KITTI_STEP.num_classes, things_list=KITTI_STEP.thing_ids)
    min_h = default_min_height(h) if args.min_instance_height is None else args.min_instance_height
    print(
        f"model {args.model} {' '.join(args.set)}; tracker {cfg.tracker.name}; {args.frames} frames {w}x{h} per clip; "
        f"ground truth: things lower than {min_h:g} px are crowd"
    )
    print(f"{'seed':>6} {'scenario':<10} {'PQ':>6} {'PQ_th':>6} {'PQ_st':>6} {'STQ':>6} {'AQ':>6} {'SQ':>6} {'FPS':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for scenario in scenarios:
                clip = Path(tmp) / f"{scenario}-{seed}"
                write_sequence(clip, seed=seed, frames=args.frames, size=(w, h), scenario=scenario,
                               min_instance_height=args.min_instance_height)
                out = Path(tmp) / f"out-{scenario}-{seed}"
                t0 = time.perf_counter()
                summary = run_video(str(clip / "video.mp4"), out, cfg)
                dt = time.perf_counter() - t0
                r = score(clip, out / "panoptic_kitti", args.frames, pq_all, stq_all, f"{scenario}-{seed}")
                print(f"{seed:>6} {scenario:<10} {r['PQ']:6.3f} {r['PQ_th']:6.3f} {r['PQ_st']:6.3f} "
                      f"{r['STQ']:6.3f} {r['AQ']:6.3f} {r['SQ']:6.3f} {summary['frames'] / dt:6.1f}", flush=True)
    r, s = pq_all.result(), stq_all.result()
    print(f"{'all':>6} {'':<10} {r['PQ']:6.3f} {r['PQ_things']:6.3f} {r['PQ_stuff']:6.3f} "
          f"{s['STQ']:6.3f} {s['AQ']:6.3f} {s['SQ']:6.3f}")
    names = {c.id: c.name for c in KITTI_STEP.categories}
    parts = [f"{names[int(cid)]} {v['PQ']:.3f}" for cid, v in r["per_class"].items()
             if v["valid"] and int(cid) in names]
    print("per-class PQ (all clips): " + ", ".join(parts))


if __name__ == "__main__":
    main()
