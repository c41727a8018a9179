"""Per-model inference speed (ms/frame) and the effect of each fast-path option.

    python benchmarks/models.py [--models detr-r50-panoptic,maskrcnn-v2-coco,...] [--size 640x360]
                                [--short-side 384] [--frames 4] [--scale full|tiny] [--options]
                                [--compile] [--device auto|cpu|cuda]

Networks are random-initialised (no download): ``--scale full`` builds the published
architecture (same FLOPs as the real weights, but post-processing sees random scores, so its
share differs from real use); ``--scale tiny`` the test-size networks. Timing covers the
whole `predict`: upload, resize/normalise, forward pass, device post-processing and fusion,
and the segment-table copy (the id map stays on the device, as in the pipeline).

With ``--options`` the first model is also timed with each fast-path option alone:
``channels_last``, ``autocast=bf16`` (``fp16`` too on CUDA), ``compile`` (with ``--compile``:
first calls compile), and batch 1 vs batch 4 (batch 8 on CUDA).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "models"))  # tiny configs of the tests

from vpanoptic.models.hub.preprocess import FastPath  # noqa: E402
from vpanoptic.models.hub.zoo import SPECS  # noqa: E402
from vpanoptic.models.registry import resolve_device  # noqa: E402
from vpanoptic.runtime import configure_threads  # noqa: E402
from vpanoptic.types import Frame  # noqa: E402

DEFAULT_MODELS = (
    "detr-r50-panoptic,mask2former-swin-t-coco,mask2former-swin-t-cityscapes,maskrcnn-v2-coco,maskrcnn-v2-semfpn-coco"
)


def build(name: str, scale: str, device: torch.device, fast: FastPath, short_side: int):
    spec = SPECS[name]
    torch.manual_seed(0)
    if spec.family in ("detr", "mask2former"):
        import transformers as tf

        from vpanoptic.models.hub.hf import QueryPanopticModel, random_config

        cls = tf.DetrForSegmentation if spec.family == "detr" else tf.Mask2FormerForUniversalSegmentation
        if scale == "full":
            net = cls(random_config(spec))
        else:
            from model_helpers import tiny_hf_network  # type: ignore[import-not-found]  # tests/models, on sys.path

            net = tiny_hf_network(spec)
        return QueryPanopticModel(spec, net, device=device, fast=fast, short_side=short_side, max_side=2 * short_side)
    from vpanoptic.models.hub.maskrcnn import MaskRCNNPanopticModel, PanopticFPN, SemanticFPNHead, build_detector

    if scale == "full":
        head = None
        if spec.family == "maskrcnn-semantic":
            head = SemanticFPNHead(channels=spec.arch["head_channels"], num_classes=len(spec.arch["stuff_labels"]))
        fpn = PanopticFPN(build_detector(len(spec.labels), short_side=short_side, max_side=2 * short_side), head)
    else:
        from model_helpers import tiny_panoptic_fpn

        fpn = tiny_panoptic_fpn(spec)
    return MaskRCNNPanopticModel(spec, fpn, device=device, fast=fast)


def time_model(model, frames: list[Frame], batch: int, warmup: int) -> float:
    """Milliseconds per frame over `frames`, after `warmup` untimed batches."""
    def run(chunk):
        outs = model.predict(chunk)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
        return outs

    for _ in range(warmup):
        run(frames[:batch])
    t = time.perf_counter()
    n = 0
    for i in range(0, len(frames) - batch + 1, batch):
        run(frames[i : i + batch])
        n += batch
    return 1000 * (time.perf_counter() - t) / max(n, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--size", default="640x360", help="frame WIDTHxHEIGHT")
    ap.add_argument(
        "--short-side", type=int, default=384, help="network input shorter side (published: 800, Cityscapes 1024)"
    )
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--scale", choices=("full", "tiny"), default="full")
    ap.add_argument("--options", action="store_true", help="also time each fast-path option on the first model")
    ap.add_argument("--compile", action="store_true", help="include torch.compile in --options (slow first calls)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    device = resolve_device(args.device)
    threads = configure_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    rng = np.random.default_rng(0)
    big_batch = 8 if device.type == "cuda" else 4
    frames = [
        Frame(i, i, i / 10, 0.0, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for i in range(max(args.frames, big_batch))
    ]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} torch threads"
    print(
        f"device {device} ({gpu}); frames {w}x{h}; network short side {args.short_side}; "
        f"{args.scale}-size random weights"
    )
    print(f"{'model':<32} {'variant':<22} {'ms/frame':>9}")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for name in names:
        model = build(name, args.scale, device, FastPath(), args.short_side)
        ms = time_model(model, frames[: args.frames], 1, args.warmup)
        print(f"{name:<32} {'fp32, batch 1':<22} {ms:9.1f}", flush=True)
        model.close()
    if not args.options or not names:
        return
    name = names[0]
    variants: list[tuple[str, FastPath, int]] = [
        ("fp32, batch 1", FastPath(), 1),
        ("channels_last", FastPath(channels_last=True), 1),
        ("autocast bf16", FastPath(autocast="bf16"), 1),
    ]
    if device.type == "cuda":
        variants.append(("autocast fp16", FastPath(autocast="fp16"), 1))
        variants.append(("fp16 + channels_last", FastPath(autocast="fp16", channels_last=True), 1))
    if args.compile:
        variants.append(("torch.compile", FastPath(compile=True), 1))
    variants.append((f"fp32, batch {big_batch}", FastPath(), big_batch))
    if device.type == "cuda":
        variants.append((f"fp16, batch {big_batch}", FastPath(autocast="fp16"), big_batch))
    for label, fast, batch in variants:
        model = build(name, args.scale, device, fast, args.short_side)
        warm = args.warmup + (2 if fast.compile else 0)
        ms = time_model(model, frames[: max(args.frames, batch)], batch, warm)
        print(f"{name:<32} {label:<22} {ms:9.1f}", flush=True)
        model.close()


if __name__ == "__main__":
    main()
