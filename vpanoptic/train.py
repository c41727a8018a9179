"""Train the default model (StreetNet) on the synthetic street world, on the CPU, from scratch.

    vpanoptic train --out streetnet.pt [--steps 3000] [--seed 0] [--threads 0]
    vpanoptic train --recipe streetnet --out streetnet.pt   (the shipped weights, all stages)

Data is rendered on the fly: every batch is a pure function of (seed, step), so a run is
reproducible from its seed and resumes exactly from its periodic state file
(``OUT.state.pt``, every `save_every` steps; `resume`). The log has the losses every
`log_every` steps and the validation PQ / mIoU on held-out worlds every `val_every` steps;
the checkpoint and its ``.sha256`` are written to `out` at the end. The loop itself is
`vpanoptic.models.street.training`; this module checks the options (`train_streetnet`), runs
recipes of several stages (`run_recipe`) and supplies the validation (`validate`), which uses
`vpanoptic.eval`: the model package never imports the metrics. The command is
`vpanoptic.cli.train`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = ["DEFAULT_HYPERPARAMETERS", "RECIPES", "run_recipe", "street_validator", "train_streetnet", "validate"]

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
# shipped input size (512x288 for 640x360 video) with sharper center heatmaps (sigma 1 cell,
# NMS window 3) so that neighboring small objects get separate centers.
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
#: The hyper-parameters a recipe stage starts from (a stage then sets its own).
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {"crop": DEFAULT_CROP, "input_size": DEFAULT_INPUT_SIZE,
                                           "scale": DEFAULT_SCALE, "sigma": DEFAULT_SIGMA, "nms_kernel": None,
                                           "lr": DEFAULT_LR}


def _log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


def train_streetnet(
    out: str | Path,
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH,
    lr: float = DEFAULT_LR,
    crop: tuple[int, int] = DEFAULT_CROP,
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
    scale: tuple[float, float] = DEFAULT_SCALE,
    sigma: float = DEFAULT_SIGMA,
    nms_kernel: int | None = None,
    init: str | None = None,
    tiny: bool = False,
    threads: int = 0,
    workers: int = 1,
    resume: bool = False,
    log_every: int = 20,
    val_every: int = 500,
    save_every: int = 200,
    log: Callable[[str], None] = _log,
) -> None:
    """Train StreetNet into the checkpoint `out` (and ``out.sha256``).

    crop, input_size: (width, height) px of the training crops and of the network input for
    640x360 video; scale: range of the downscale before cropping; sigma: standard deviation
    of the center heatmap Gaussians in output cells; nms_kernel: grouping window stored for
    inference (None: the model's); init: checkpoint to fine-tune; tiny: a tiny network and
    crop (tests); threads: torch threads (0 = the default of every entry point); workers:
    data processes (0 = render in this process). Bad values raise `UserError` before any work.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("log_every", log_every)):
        if value < 1:
            raise UserError(f"{name} is {value}; expected >= 1")
    for name, value in (("threads", threads), ("workers", workers), ("val_every", val_every),
                        ("save_every", save_every)):
        if value < 0:
            raise UserError(f"{name} is {value}; expected >= 0")
    if not sigma > 0:
        raise UserError(f"sigma is {sigma}; expected > 0")
    if nms_kernel is not None and (nms_kernel < 1 or nms_kernel % 2 == 0):
        raise UserError(f"nms_kernel is {nms_kernel}; expected an odd number >= 1")
    if not lr > 0:
        raise UserError(f"lr is {lr}; expected > 0")
    lo, hi = scale
    if not 0 < lo <= hi <= 2:
        raise UserError(f"scale is {lo},{hi}; expected 0 < LO <= HI <= 2")
    from .job import set_thread_defaults
    from .models.street.data import DataParams
    from .models.street.training import TrainConfig, train

    set_thread_defaults(threads)
    data = DataParams(crop=TINY_CROP if tiny else crop, scale=scale, sigma=sigma)
    cfg = TrainConfig(seed=seed, steps=steps, batch_size=batch_size, lr=lr, input_size=input_size,
                      net=dict(TINY_NET) if tiny else {}, data=data, init=init,
                      grouping={} if nms_kernel is None else {"nms_kernel": nms_kernel})
    train(cfg, str(out), resume=resume, workers=workers, log_every=log_every, val_every=val_every,
          save_every=save_every, log=log, validator=street_validator(cfg))


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


def run_recipe(recipe: str, out: str | Path, *, log: Callable[[str], None] = _log, **options: Any) -> None:
    """The stages of `RECIPES[recipe]`, each a `train_streetnet` run from the previous one.

    Stage i writes ``OUT.stageI.pt`` (the last one `out`) and is skipped when that file and its
    ``.sha256`` exist (verified first: a damaged stage is an error). `options` are the other
    keyword arguments of `train_streetnet` (threads, workers, tiny, ...); each stage's own
    values replace them and the hyper-parameters it does not set take their defaults.
    """
    from .models.street.checkpoint import load_checkpoint

    if recipe not in RECIPES:
        raise UserError(f"unknown recipe {recipe!r}; choose from {', '.join(sorted(RECIPES))}")
    if options.get("init") is not None:
        raise UserError("a recipe starts from scratch; leave out init")
    stages = RECIPES[recipe]
    out = Path(out)
    previous = None
    for i, stage in enumerate(stages, start=1):
        target = out if i == len(stages) else out.with_name(f"{out.stem}.stage{i}{out.suffix}")
        if target.is_file() and target.with_name(target.name + ".sha256").is_file():
            load_checkpoint(target)
            log(f"stage {i}/{len(stages)}: {target} exists, skipped")
        else:
            log(f"stage {i}/{len(stages)}: {stage} -> {target}")
            train_streetnet(target, **{**options, **DEFAULT_HYPERPARAMETERS, "init": previous, **stage}, log=log)
        previous = str(target)

