"""How well the tracker's motion model predicts where an object will be, on ground truth.

Every true object of synthetic clips (`vpanoptic synth` scenarios, the situations of
`tracking_quality.py`) is fed, frame by frame, through a one-track `TrackTable` exactly as
the tracker would feed it (centre, area, border contact; the growth rate only from masks of
at least `scale_min_area` px clear of the border); before each observation the table's
prediction is compared with it. Printed per situation and growth model: the median and 90th
percentile of the centre error in object sizes (sqrt of the larger area) and of the error of
log(area), and the share of predictions off by more than half a size. No camera-motion
compensation and no association: this isolates the motion model.

    python benchmarks/motion_prediction.py                       # 3 fps, street, fast; seeds 0-3
    python benchmarks/motion_prediction.py --seeds 16 --only 3   # 3 fps only, seeds 0-15
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracking_quality import SITUATIONS, clip_predictions  # noqa: E402

from vpanoptic.config import TrackerConfig  # noqa: E402
from vpanoptic.runtime import configure_threads  # noqa: E402
from vpanoptic.synth.scenes import SCENARIOS  # noqa: E402
from vpanoptic.tracking.lifecycle import GROWTH_MODELS, TrackTable  # noqa: E402

DEFAULTS = TrackerConfig()  # the tracker's motion settings, as `vpanoptic run` uses them


def observations(gts, fps: float) -> dict[int, list[tuple]]:
    """Per true object: ``[(time, y, x, area, touches the border)]`` over the frames it is seen in."""
    seen = collections.defaultdict(list)
    for k, (_, inst) in enumerate(gts):
        h, w = inst.shape
        for g in np.unique(inst[inst > 0]):
            ys, xs = np.nonzero(inst == g)
            border = ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1
            seen[int(g)].append((k / fps, ys.mean(), xs.mean(), float(ys.size), bool(border)))
    return seen


def errors(seen: dict[int, list[tuple]], model: str, fps: float) -> tuple[list[float], list[float]]:
    """Centre errors (object sizes) and |log area ratio| of one-frame predictions of unclipped
    objects that were matched at least twice (so a velocity is known)."""
    centre_err, area_err = [], []
    for seq in seen.values():
        table = TrackTable(growth_model=model, max_growth=DEFAULTS.max_predicted_growth)
        t0, y0, x0, a0, b0 = seq[0]
        slot = table.add(np.array([1]), t0, np.array([[y0, x0]]), np.array([a0]), np.array([b0]))
        for t, y, x, a, border in seq[1:]:
            shift, scale = table.predict(t, DEFAULTS.max_predict_seconds)
            if not border and not table.clipped[0] and table.hits[0] >= 2 and t - table.last_seen[0] < 1.5 / fps:
                py, px = table.centroid[0] + shift[0]
                pa = table.area[0] * scale[0] ** 2
                centre_err.append(float(np.hypot(py - y, px - x) / np.sqrt(max(pa, a, 16.0))))
                area_err.append(abs(float(np.log(pa / a))))
            ok = np.array([not border and not table.clipped[0] and min(a, table.area[0]) >= DEFAULTS.scale_min_area])
            table.observe(slot, t, np.array([[y, x]]), np.array([a]), DEFAULTS.velocity_smoothing,
                          DEFAULTS.velocity_area_change, scale_ok=ok, max_scale_rate=DEFAULTS.max_scale_rate,
                          clipped=np.array([border]))
    return centre_err, area_err


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=4, help="clips per situation (seeds S..S+N-1)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--only", default="3 fps,street,fast", help="comma-separated situations (substring match)")
    args = ap.parse_args(argv)
    configure_threads(1)
    names = [n for n in SITUATIONS if any(k in n for k in args.only.split(","))]
    print(
        "| situation | growth model | predictions | centre error median / p90 (sizes) | > 0.5 size "
        "| log-area error median / p90 |"
    )
    print("|---|---|---:|---|---:|---|")
    for name in names:
        scenario, frames, size = SITUATIONS[name]
        fps = SCENARIOS[scenario].fps
        clips = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                gts, _, _ = clip_predictions(scenario, seed, frames, size, Path(tmp))
            clips.append(observations(gts, fps))
        for model in GROWTH_MODELS:
            ce, ae = [], []
            for seen in clips:
                c, a = errors(seen, model, fps)
                ce += c
                ae += a
            ce, ae = np.array(ce), np.array(ae)
            print(f"| {name} | {model} | {ce.size} | {np.median(ce):.3f} / {np.percentile(ce, 90):.3f} | "
                  f"{np.mean(ce > 0.5):.3f} | {np.median(ae):.3f} / {np.percentile(ae, 90):.3f} |")


if __name__ == "__main__":
    main()
