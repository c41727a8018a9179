"""The StreetNet training loop (command line: `vpanoptic.train`).

Data is rendered on the fly (`vpanoptic.models.street.data`): every batch is a pure function
of (seed, step), so a run is reproducible from its seed and can be resumed exactly from its
periodic state file (``OUT.state.pt``, written every ``--save-every`` steps; ``--resume``).
The log (stdout) has the losses every ``--log-every`` steps and the validation PQ / mIoU on
held-out worlds every ``--val-every`` steps. At the end the checkpoint (weights + metadata:
classes, normalisation, input size, seed, validation scores; see `models.street.checkpoint`) and its
``.sha256`` are written to ``--out``.

Validation worlds use seeds below `EVAL_SEED_RANGE` (training never draws them).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from .data import CLASS_IDS, IGNORE, THING_IDS, DataParams, make_batch, render_sample

__all__ = ["VAL_SEEDS", "TrainConfig", "checkpoint_meta", "compute_losses", "train", "validation_frames"]

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Held-out validation worlds: (seed, scenario, time s) of single frames.
VAL_SEEDS = (101, 102, 103, 104, 105, 106)
VAL_SCENARIOS = ("street", "crossing", "crowd", "fast", "pan_zoom", "occlusion")
VAL_TIMES = (3.0, 11.0)
CLASS_NAMES = ("road", "sidewalk", "building", "pole", "vegetation", "sky", "person", "car")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (all stored in the checkpoint's metadata).

    input_size: (w, h) the shipped model runs at on 640x360 video (its training scale range
        `data.scale` is centered on it).
    loss weights: semantic (cross-entropy on the hardest `hard_pixels` fraction), center
        (MSE on the heatmap, Panoptic-DeepLab's 200), offset (L1 in output pixels).
    init: a checkpoint to start from (fine-tuning, e.g. at another scale); its network
        config replaces `net`. None = random initialisation.
    grouping: `GroupingParams` fields stored in the checkpoint as the model's inference
        defaults (e.g. a smaller ``nms_kernel`` for a sharper center heatmap).
    """

    seed: int = 0
    steps: int = 6000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    hard_pixels: float = 0.3
    w_center: float = 200.0
    w_offset: float = 0.1
    input_size: tuple[int, int] = (384, 216)
    net: dict = field(default_factory=dict)
    init: str | None = None
    grouping: dict = field(default_factory=dict)
    data: DataParams = DataParams()


def compute_losses(outputs, batch, hard_pixels: float = 0.3) -> dict[str, torch.Tensor]:
    """Losses of one batch; ``outputs`` = StreetNet's (sem, center, offset) at stride 4.

    The semantic loss averages the hardest `hard_pixels` fraction of labelled pixels.
    """
    sem, center, offset = outputs
    target = batch["sem"]
    logits = F.interpolate(sem, size=target.shape[-2:], mode="bilinear", align_corners=False)
    pix = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none").flatten()
    valid = (target != IGNORE).flatten()
    pix = pix[valid]
    k = max(1, int(pix.numel() * hard_pixels))
    loss_sem = torch.topk(pix, k, sorted=False).values.mean() if pix.numel() else pix.sum()
    loss_center = F.mse_loss(center, batch["center"])
    w = batch["weight"]
    loss_offset = (torch.abs(offset - batch["offset"]) * w).sum() / (2 * w.sum()).clamp(min=1)
    return {"sem": loss_sem, "center": loss_center, "offset": loss_offset}


class _Batches(torch.utils.data.IterableDataset):
    def __init__(self, seed: int, start: int, stop: int, batch_size: int, data: DataParams):
        self.seed, self.start, self.stop, self.batch_size, self.data = seed, start, stop, batch_size, data

    def __iter__(self):
        torch.set_num_threads(1)
        for step in range(self.start, self.stop):
            yield make_batch(self.seed, step, self.batch_size, self.data)


def _normalize(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr * (1 - (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)) ** 0.9


def checkpoint_meta(cfg: TrainConfig) -> dict:
    """The checkpoint metadata a run of `cfg` writes (classes, normalisation, input size, grouping)."""
    return {
        "classes": list(CLASS_IDS), "class_names": list(CLASS_NAMES), "thing_ids": list(THING_IDS),
        "dataset": "kitti-step", "mean": list(MEAN), "std": list(STD), "input_size": list(cfg.input_size),
        "grouping": dict(cfg.grouping),
    }


def validation_frames(size=(640, 360)):
    """The held-out validation frames: list of (image, semantic, instance)."""
    return [render_sample(s, sc, t, size) for s, sc in zip(VAL_SEEDS, VAL_SCENARIOS) for t in VAL_TIMES]


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, workers: int = 1, log_every: int = 20,
          val_every: int = 500, save_every: int = 200, validate_at_end: bool = True, log=print,
          on_step=None, validator: Callable[[torch.nn.Module], dict] | None = None) -> dict:
    """Run training; writes ``out`` (checkpoint) and ``out.state.pt``; returns the final metadata.

    `on_step(step, losses)`, if given, receives every step's losses as floats (tests, monitoring).
    `validator(net)`, if given, returns the validation scores logged every `val_every` steps
    and at the end (`validate_at_end`); ``vpanoptic.train`` passes the PQ / mIoU on
    `validation_frames`. The model package itself never imports the metrics.
    """
    from .checkpoint import save_checkpoint
    from .network import StreetNet, StreetNetConfig

    out = Path(out)
    state_path = out.with_name(out.name + ".state.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net_cfg = StreetNetConfig(**{**StreetNetConfig().to_dict(), **cfg.net})
    net_cfg = StreetNetConfig.from_dict(net_cfg.to_dict())
    init_sha = None
    if cfg.init is not None:
        from .checkpoint import load_checkpoint

        init = load_checkpoint(cfg.init)
        init_sha = hashlib.sha256(Path(cfg.init).read_bytes()).hexdigest()
        net_cfg = StreetNetConfig.from_dict(init["config"])
    net = StreetNet(net_cfg)
    if cfg.init is not None:
        net.load_state_dict(init["state_dict"])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, history, elapsed = 0, [], 0.0
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, elapsed = int(state["step"]), float(state["elapsed"])
        history = json.loads(state["history"])
        log(f"resumed from {state_path} at step {start}")
    loader = torch.utils.data.DataLoader(_Batches(cfg.seed, start, cfg.steps, cfg.batch_size, cfg.data),
                                         batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None)
    net.train()
    t_last = time.perf_counter()
    running: dict[str, float] = {}
    step = start
    for step, batch in enumerate(loader, start=start):
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        outputs = net(_normalize(batch["image"]))
        losses = compute_losses(outputs, batch, cfg.hard_pixels)
        total = losses["sem"] + cfg.w_center * losses["center"] + cfg.w_offset * losses["offset"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        values = {k: float(v.detach()) for k, v in {**losses, "total": total}.items()}
        for k, v in values.items():
            running[k] = running.get(k, 0.0) + v
        if on_step is not None:
            on_step(step, values)
        done = step + 1
        if done % log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            n = done % log_every or log_every
            avg = {k: round(v / n, 4) for k, v in running.items()}
            running = {}
            history.append({"step": done, **avg})
            log(f"step {done}/{cfg.steps} lr {_lr(cfg, step):.2e} loss {avg['total']:.4f} "
                f"(sem {avg['sem']:.4f} center {avg['center']:.5f} offset {avg['offset']:.3f}) {elapsed / 60:.1f} min")
        if validator is not None and val_every and done % val_every == 0 and done < cfg.steps:
            log(f"step {done} validation {json.dumps(validator(net))}")
        if save_every and done % save_every == 0:
            torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": done,
                        "elapsed": elapsed, "history": json.dumps(history)}, state_path)
    elapsed += time.perf_counter() - t_last
    scores = validator(net) if validator is not None and validate_at_end else {}
    if scores:
        log(f"final validation {json.dumps(scores)}")
    meta = checkpoint_meta(cfg)
    meta["train"] = {"seed": cfg.seed, "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
                     "data": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg.data).items()},
                     "minutes": round(elapsed / 60, 1), "torch_threads": torch.get_num_threads(),
                     "init": None if cfg.init is None else {"file": Path(cfg.init).name, "sha256": init_sha},
                     "final_loss": history[-1] if history else None}
    meta["validation"] = {"frames": [[s, sc, t] for s, sc in zip(VAL_SEEDS, VAL_SCENARIOS) for t in VAL_TIMES],
                          **scores}
    digest = save_checkpoint(out, net_cfg.to_dict(), meta, net.state_dict())
    log(f"wrote {out} (sha256 {digest[:12]}..., {out.stat().st_size / 1e6:.2f} MB) after {elapsed / 60:.1f} min")
    return meta


