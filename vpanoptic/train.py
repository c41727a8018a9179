"""Train the default model (StreetNet) on the synthetic street world, on the CPU, from scratch.

    python -m vpanoptic.train --out streetnet.pt [--steps 3000] [--seed 0] [--threads 1]
    vpanoptic train --out streetnet.pt ...          (the same, through the CLI)
    vpanoptic train --recipe streetnet --out streetnet.pt   (the shipped weights, all stages)

Data is rendered on the fly: every batch is a pure function of (seed, step), so a run is
reproducible from its seed and resumes exactly from its periodic state file
(``OUT.state.pt``, every ``--save-every`` steps; ``--resume``). The log has the losses every
``--log-every`` steps and the validation PQ / mIoU on held-out worlds every ``--val-every``
steps; the checkpoint and its ``.sha256`` are written to ``--out`` at the end. The loop
itself is `vpanoptic.models.street.training`; this module parses arguments (no torch import
at CLI start-up) and supplies the validation (`validate`), which uses `vpanoptic.eval`: the
model package never imports the metrics.
"""

from __future__ import annotations

import argparse
import sys
import time

from .errors import UserError

__all__ = ["add_arguments", "main", "run_from_args", "street_validator", "validate"]

# Defaults of the shipped model's run (README "Retraining the default model").
DEFAULT_STEPS = 3000
DEFAULT_BATCH = 8
DEFAULT_LR = 2e-3
DEFAULT_CROP = (320, 192)
DEFAULT_INPUT_SIZE = (384, 216)
DEFAULT_SCALE = (0.45, 0.8)
DEFAULT_SIGMA = 2.0
# The shipped weights: `--recipe streetnet` runs these stages in order, each starting from the
# previous stage's checkpoint (OUT.stage1.pt, OUT.stage2.pt, ..., the last one is OUT).
# Stage 1 learns the world at a small scale from scratch; the next ones fine-tune at the
# shipped input size (512x288 for 640x360 video) with sharper centre heatmaps (sigma 1 cell,
# NMS window 3) so that neighbouring small objects get separate centres.
_HIGH_RES = {"crop": (384, 224), "input_size": (512, 288), "scale": (0.6, 1.0), "sigma": 1.0, "nms_kernel": 3}
RECIPES: dict[str, list[dict]] = {
    "streetnet": [
        {"seed": 0, "steps": 3000},
        {"seed": 1, "steps": 4000, "lr": 1e-3, **_HIGH_RES},
        {"seed": 2, "steps": 4000, "lr": 5e-4, **_HIGH_RES},
    ],
}
TINY_CROP = (96, 64)
TINY_NET = {"widths": (8, 8, 16, 16, 16), "blocks": (1, 1, 1), "decoder": (16, 8)}


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"size is {text!r}; expected WIDTHxHEIGHT, e.g. 384x216") from None


def _scale(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale is {text!r}; expected LO,HI, e.g. 0.45,0.8") from None
    if not 0 < lo <= hi <= 2:
        raise argparse.ArgumentTypeError(f"scale is {text!r}; expected 0 < LO <= HI <= 2")
    return lo, hi


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `vpanoptic train` / `python -m vpanoptic.train`."""
    p.add_argument("--out", required=True, help="checkpoint to write (a .sha256 is written beside it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the whole run (data, init)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="peak AdamW learning rate (poly decay)")
    p.add_argument("--crop", type=_size, default=DEFAULT_CROP, help="training crop WxH")
    p.add_argument("--input-size", type=_size, default=DEFAULT_INPUT_SIZE,
                   help="network input WxH for 640x360 video, stored in the checkpoint")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    p.add_argument("--workers", type=int, default=1, help="data processes (0 = render in the training process)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state.pt if it exists")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--val-every", type=int, default=500, help="validation PQ every N steps (0 = only at the end)")
    p.add_argument("--save-every", type=int, default=200, help="write OUT.state.pt every N steps (0 = never)")
    p.add_argument("--scale", type=_scale, default=DEFAULT_SCALE,
                   help="range LO,HI of the downscale of the 640x360 frames before cropping")
    p.add_argument("--sigma", type=float, default=DEFAULT_SIGMA,
                   help="standard deviation of the centre heatmap Gaussians, in output cells (stride 4)")
    p.add_argument("--nms-kernel", type=int, default=None,
                   help="grouping NMS window stored in the checkpoint for inference (odd; default: the model's)")
    p.add_argument("--init", help="checkpoint to start from (fine-tuning; its .sha256 must be beside it)")
    p.add_argument("--tiny", action="store_true", help="a tiny network and crop (tests, smoke runs)")
    p.add_argument("--recipe", choices=sorted(RECIPES),
                   help="run a multi-stage recipe (`streetnet`: the shipped weights); sets every training "
                        "hyper-parameter of each stage, writes OUT.stageN.pt between stages and skips stages done")


def run_from_args(args: argparse.Namespace) -> int:
    """Build the `TrainConfig` from parsed arguments and train. Bad values raise `UserError`."""
    for name in ("steps", "batch_size", "threads", "log_every"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} is {getattr(args, name)}; expected >= 1")
    if args.workers < 0 or args.val_every < 0 or args.save_every < 0:
        raise UserError("--workers, --val-every and --save-every must be >= 0")
    if not args.sigma > 0:
        raise UserError(f"--sigma is {args.sigma}; expected > 0")
    if args.nms_kernel is not None and (args.nms_kernel < 1 or args.nms_kernel % 2 == 0):
        raise UserError(f"--nms-kernel is {args.nms_kernel}; expected an odd number >= 1")
    if not args.lr > 0:
        raise UserError(f"--lr is {args.lr}; expected > 0")
    if args.recipe is not None:
        return _run_recipe(args)
    import torch

    from .models.street.data import DataParams
    from .models.street.training import TrainConfig, train

    torch.set_num_threads(args.threads)
    data = DataParams(crop=TINY_CROP if args.tiny else args.crop, scale=args.scale, sigma=args.sigma)
    cfg = TrainConfig(seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      input_size=args.input_size, net=dict(TINY_NET) if args.tiny else {}, data=data,
                      init=args.init,
                      grouping={} if args.nms_kernel is None else {"nms_kernel": args.nms_kernel})
    train(cfg, args.out, resume=args.resume, workers=args.workers, log_every=args.log_every,
          val_every=args.val_every, save_every=args.save_every,
          log=lambda msg: print(time.strftime("%H:%M:%S"), msg, flush=True), validator=street_validator(cfg))
    return 0


def street_validator(cfg):
    """``validator(net)`` for `train`: PQ and mIoU on the held-out frames of `validation_frames`."""
    from .models.street.training import validation_frames

    frames = validation_frames()
    return lambda net: validate(net, cfg, frames)


def validate(net, cfg, frames) -> dict:
    """PQ and mIoU of `net` on held-out frames (deeplab2 rules, KITTI-STEP classes)."""
    import torch

    from .datasets import KITTI_STEP
    from .eval import PanopticQuality, STQuality
    from .models.street.grouping import GroupingParams
    from .models.street.inference import Predictor
    from .models.street.training import checkpoint_meta

    was_training = net.training
    pred = Predictor(net, checkpoint_meta(cfg), torch.device("cpu"), input_size=cfg.input_size,
                     params=GroupingParams(**cfg.grouping))
    pq = PanopticQuality(num_classes=KITTI_STEP.num_classes, things_list=KITTI_STEP.thing_ids)
    seg = STQuality(num_classes=KITTI_STEP.num_classes, things_list=KITTI_STEP.thing_ids)
    for i, (image, semantic, instance) in enumerate(frames):
        (psem, pinst), = pred.semantic_instance([image])
        pq.update((semantic, instance), (psem, pinst))
        seg.update((semantic, instance), (psem, pinst), sequence_id=i)
    net.train(was_training)
    r = pq.result()
    return {"PQ": round(r["PQ"], 4), "SQ": round(r["SQ"], 4), "RQ": round(r["RQ"], 4),
            "mIoU": round(seg.result()["IoU"], 4)}


def _run_recipe(args: argparse.Namespace) -> int:
    """The stages of `args.recipe`, each a plain run (same code path as the single-run options)."""
    from pathlib import Path

    from .models.street.checkpoint import load_checkpoint

    if args.init is not None:
        raise UserError("--recipe starts from scratch; leave out --init")
    stages = RECIPES[args.recipe]
    out = Path(args.out)
    previous = None
    for i, stage in enumerate(stages, start=1):
        target = out if i == len(stages) else out.with_name(f"{out.stem}.stage{i}{out.suffix}")
        done = target.is_file() and target.with_name(target.name + ".sha256").is_file()
        if done:
            load_checkpoint(target)  # verified: a damaged stage is an error, not silently reused
            print(time.strftime("%H:%M:%S"), f"stage {i}/{len(stages)}: {target} exists, skipped", flush=True)
        else:
            print(time.strftime("%H:%M:%S"), f"stage {i}/{len(stages)}: {stage} -> {target}", flush=True)
            ns = argparse.Namespace(**{**vars(args), "recipe": None, "out": str(target), "init": previous,
                                       "crop": DEFAULT_CROP, "input_size": DEFAULT_INPUT_SIZE,
                                       "scale": DEFAULT_SCALE, "sigma": DEFAULT_SIGMA, "nms_kernel": None,
                                       "lr": DEFAULT_LR, **stage})
            run_from_args(ns)
        previous = str(target)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vpanoptic.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_from_args(args)
    except UserError as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
