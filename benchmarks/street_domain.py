"""The default model's out-of-domain check: calibration, held-out check and overhead.

    python benchmarks/street_domain.py calibrate [--write] [--checkpoint PATH]
    python benchmarks/street_domain.py check [REAL_VIDEO ...]
    python benchmarks/street_domain.py overhead [--frames 40]

1. calibrate: renders the calibration clips (`domain.CALIBRATION_CLIPS`) with `vpanoptic synth`
   (H.264, decoded as the pipeline decodes them), prints the statistic of each (mean
   normalised semantic entropy over the first frames), the rendered-frame value beside it,
   and the threshold (`MARGIN` x the highest). `--write` stores the reference in the
   checkpoint's metadata (``meta["domain"]``; default: the bundled one, or a retrained one
   given by `--checkpoint`), re-saved with identical weights and a new ``.sha256``.
2. check: the held-out synthetic clips (seeds used nowhere else, several scenarios,
   `vpanoptic synth --scenario`) and the given real videos: statistic and decision of each,
   as the model itself makes it (`StreetModel.predict` on the first frames).
3. overhead: ms per frame of `predict` on a synthetic clip with the check on and off (same
   process, interleaved frame by frame), and the cost of the statistic itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from vpanoptic.models.registry import build_model
from vpanoptic.models.street.checkpoint import default_weights_path, load_checkpoint, save_checkpoint
from vpanoptic.models.street.domain import CHECK_FRAMES, MARGIN, DomainReference, calibrate, semantic_entropy
from vpanoptic.models.street.inference import StreetModel
from vpanoptic.runtime import configure_threads
from vpanoptic.types import Frame

# Held-out synthetic clips: (seed, scenario, size, fps or None); seeds used nowhere else.
HELD_OUT = [(2000, "street", "640x360", None), (2001, "crossing", "640x360", None),
            (2002, "crowd", "640x360", None), (2003, "fast", "640x360", None),
            (2004, "occlusion", "640x360", None), (2005, "pan_zoom", "640x360", None),
            (2006, "low_fps", "640x360", None), (2007, "crowd", "320x180", 3.0)]


def synth_clip(folder: Path, seed: int, scenario: str, size: str, frames: int, fps: float | None = None) -> Path:
    """Render a clip with the `vpanoptic synth` command; returns its video.mp4."""
    out = folder / f"{seed}-{scenario}-{size}"
    cmd = [sys.executable, "-m", "vpanoptic", "synth", str(out), "--seed", str(seed), "--scenario", scenario,
           "--size", size, "--frames", str(frames)] + (["--fps", str(fps)] if fps else [])
    subprocess.run(cmd, check=True, capture_output=True)
    return out / "video.mp4"


def decoded(path: Path, frames: int) -> list[np.ndarray]:
    """The first `frames` frames of a video, ``(H, W, 3) uint8`` RGB."""
    images = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            images.append(frame.to_ndarray(format="rgb24"))
            if len(images) == frames:
                break
    return images


def model_decision(model, images: list[np.ndarray]) -> tuple[float, bool]:
    """Run the model on the first frames as the pipeline does; returns (statistic, warned)."""
    for i, image in enumerate(images):
        model.predict([Frame(i, i, i / 10, 0.0, image)])
    assert model.domain.decided, "too few frames for a decision"
    return model.domain.value, bool(model.warnings)


def cmd_calibrate(args) -> None:
    path = Path(args.checkpoint) if args.checkpoint else default_weights_path()
    model = StreetModel(device="cpu", weights=str(path))
    logits_of = model.predictor.semantic_logits
    with tempfile.TemporaryDirectory() as tmp:
        def render(seed, scenario, size, n):
            return decoded(synth_clip(Path(tmp), seed, scenario, f"{size[0]}x{size[1]}", n), n)
        ref = calibrate(logits_of, frames=CHECK_FRAMES, margin=MARGIN, render=render)
    raw = calibrate(logits_of, frames=CHECK_FRAMES, margin=MARGIN)  # rendered frames, no codec
    print(f"{'seed':>5} {'scenario':10} {'size':>9}  {'H.264':>7} {'rendered':>8}")
    cal, raw_cal = ref.calibration or {}, raw.calibration or {}
    for row, raw_row in zip(cal["clips"], raw_cal["clips"]):
        seed, scenario, size, value = row
        print(f"{seed:>5} {scenario:10} {size[0]:>4}x{size[1]:<4}  {value:7.4f} {raw_row[-1]:8.4f}")
    print(f"H.264 clips: mean {cal['mean']:.4f}, max {cal['max']:.4f}; threshold = {MARGIN} x max = {ref.threshold}")
    print(f"rendered frames: mean {raw_cal['mean']:.4f}, max {raw_cal['max']:.4f}")
    if args.write:
        ckpt = load_checkpoint(path)
        meta = dict(ckpt["meta"], domain=ref.to_meta())
        digest = save_checkpoint(path, ckpt["config"], meta, ckpt["state_dict"], half=True)
        again = load_checkpoint(path)
        same = all(torch.equal(again["state_dict"][k], v) for k, v in ckpt["state_dict"].items())
        print(f"wrote meta['domain'] into {path} (sha256 {digest[:12]}...; weights identical: {same})")


def cmd_check(args) -> None:
    ref = DomainReference.from_meta(load_checkpoint()["meta"])
    if ref is None:
        raise SystemExit("the bundled checkpoint has no 'domain' reference; run `calibrate --write` first")
    print(f"threshold {ref.threshold} on the mean over the first {ref.frames} frames")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, scenario, size, fps in HELD_OUT:
            video = synth_clip(Path(tmp), seed, scenario, size, ref.frames, fps)
            name = f"synthetic {seed} {scenario} {size}" + (f" {fps:g} fps" if fps else "")
            rows.append((name, *model_decision(build_model("vpanoptic-street"), decoded(video, ref.frames))))
    for path in args.videos:
        images = decoded(Path(path), ref.frames)
        rows.append((Path(path).name, *model_decision(build_model("vpanoptic-street"), images)))
    for name, value, warned in rows:
        print(f"{name:40} {value:.4f}  {'WARNS' if warned else 'silent'}")


def cmd_overhead(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        images = decoded(synth_clip(Path(tmp), 2100, "street", "640x360", args.frames), args.frames)
    frames = [Frame(i, i, i / 10, 0.0, im) for i, im in enumerate(images)]
    on, off = StreetModel(), StreetModel()
    off.predictor.observer = None
    for m in (on, off):
        m.predict(frames[:2])

    t_on, t_off = [], []
    for _ in range(args.rounds):
        # a new, undecided check every round: these are the frames that pay for it
        on.begin_input()
        for f in frames[:CHECK_FRAMES]:  # interleaved frame by frame, so drift hits both alike
            for model, times in ((on, t_on), (off, t_off)):
                t = time.perf_counter()
                model.predict([f])
                times.append((time.perf_counter() - t) * 1e3)
        assert on.domain.decided
    print(f"predict, first {CHECK_FRAMES} frames (check running): on {np.median(t_on):.2f} ms/frame, "
          f"off {np.median(t_off):.2f} ms/frame, ratio {np.median(t_on) / np.median(t_off):.3f} "
          f"(median of {len(t_on)} frames each)")
    logits = on.predictor.semantic_logits(images[:1])
    t = time.perf_counter()
    for _ in range(200):
        semantic_entropy(logits)
    stat_ms = (time.perf_counter() - t) / 200 * 1e3
    print(f"semantic_entropy on {tuple(logits.shape)} logits: {stat_ms:.3f} ms per frame, paid on the first "
          f"{CHECK_FRAMES} frames only ({stat_ms * CHECK_FRAMES:.2f} ms per video)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("calibrate")
    p.add_argument("--write", action="store_true", help="store the reference in the checkpoint")
    p.add_argument("--checkpoint", help="a retrained checkpoint (default: the bundled one)")
    p = sub.add_parser("check")
    p.add_argument("videos", nargs="*", help="real videos (the warning must fire on each)")
    p = sub.add_parser("overhead")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    configure_threads(1)
    {"calibrate": cmd_calibrate, "check": cmd_check, "overhead": cmd_overhead}[args.command](args)


if __name__ == "__main__":
    main()
