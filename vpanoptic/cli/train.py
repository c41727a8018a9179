"""``vpanoptic train --out FILE``: train the default model (StreetNet) on the synthetic world."""

from __future__ import annotations

import argparse

from .common import parse_size

HELP = "train the default model (StreetNet) on the synthetic world, on the CPU"
#: Options that are not hyper-parameters: a recipe passes them to each of its stages.
RUN_OPTIONS = ("seed", "steps", "batch_size", "tiny", "threads", "workers", "resume", "log_every", "val_every",
               "save_every")
HYPERPARAMETERS = ("lr", "crop", "input_size", "scale", "sigma", "nms_kernel", "init")


def _scale(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale is {text!r}; expected LO,HI, e.g. 0.45,0.8") from None
    return lo, hi


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train import (
        DEFAULT_BATCH,
        DEFAULT_CROP,
        DEFAULT_INPUT_SIZE,
        DEFAULT_LR,
        DEFAULT_SCALE,
        DEFAULT_SIGMA,  # no torch: constants only
        DEFAULT_STEPS,
        RECIPES,
    )

    p.add_argument("--out", required=True, help="checkpoint to write (a .sha256 is written beside it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the whole run (data, init)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="peak AdamW learning rate (poly decay)")
    p.add_argument("--crop", type=parse_size, default=DEFAULT_CROP, help="training crop WxH")
    p.add_argument("--input-size", type=parse_size, default=DEFAULT_INPUT_SIZE,
                   help="network input WxH for 640x360 video, stored in the checkpoint")
    p.add_argument("--threads", type=int, default=0, help="torch threads of the training process (0 = default)")
    p.add_argument("--workers", type=int, default=1, help="data processes (0 = render in the training process)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state.pt if it exists")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--val-every", type=int, default=500, help="validation PQ every N steps (0 = only at the end)")
    p.add_argument("--save-every", type=int, default=200, help="write OUT.state.pt every N steps (0 = never)")
    p.add_argument("--scale", type=_scale, default=DEFAULT_SCALE,
                   help="range LO,HI of the downscale of the 640x360 frames before cropping")
    p.add_argument("--sigma", type=float, default=DEFAULT_SIGMA,
                   help="standard deviation of the center heatmap Gaussians, in output cells (stride 4)")
    p.add_argument("--nms-kernel", type=int, default=None,
                   help="grouping NMS window stored in the checkpoint for inference (odd; default: the model's)")
    p.add_argument("--init", help="checkpoint to start from (fine-tuning; its .sha256 must be beside it)")
    p.add_argument("--tiny", action="store_true", help="a tiny network and crop (tests, smoke runs)")
    p.add_argument("--recipe", choices=sorted(RECIPES),
                   help="run a multi-stage recipe (`streetnet`: the shipped weights); sets every training "
                        "hyper-parameter of each stage, writes OUT.stageN.pt between stages and skips stages done")


def run(args: argparse.Namespace) -> int:
    from ..train import run_recipe, train_streetnet

    options = {name: getattr(args, name) for name in RUN_OPTIONS}
    if args.recipe is not None:
        run_recipe(args.recipe, args.out, init=args.init, **options)
    else:
        train_streetnet(args.out, **options, **{name: getattr(args, name) for name in HYPERPARAMETERS})
    return 0
