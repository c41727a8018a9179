"""GPU speed of every model family at 1280x720, and of the whole pipeline, in one table.

    python benchmarks/gpu_bench.py [--device auto|cuda|cpu] [--budget 420] [--out out/gpu_check]
                                   [--models streetnet,detr-r50,...] [--quick]

Per model (StreetNet with its bundled weights; DETR-R50, Mask2Former Swin-T and Swin-L and
Mask R-CNN v2 as published architectures with random weights, built from their configs,
never downloaded), on 1280x720 synthetic street frames, the whole `predict` (upload,
resize/normalise, network, device post-processing and fusion, segment-table copy) is timed
in five settings: fp32 batch 1, fp16 batch 1, fp16 + channels_last, fp16 batch 8 and
torch.compile (fp16), each with its peak GPU memory. Random weights would keep no segment
at the published score thresholds, so the post-processing runs at full load instead:
every query (DETR, Mask2Former) or 100 detections (Mask R-CNN) reach the fusion.

Then the pipeline (PyAV decode thread → model → tracker → H.264 video sink, as `vpanoptic
run` wires it) runs on a synthetic 1280x720 clip; its end-to-end FPS is printed beside the
FPS of the model stage alone on the same decoded frames, and their ratio.

Cells run cheapest first (compile last) and each is skipped with a note once the time
budget (--budget seconds) runs out; the table is rewritten after every cell
(``table.md`` and ``results.json`` under --out), so a run stopped early still leaves it.

--quick runs the same code with the test-size networks on small frames, for a check of
this script on any machine (``--device cpu --quick``). Without a CUDA device (and without
--device cpu) it prints "no CUDA device" and exits with code 3.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "models"))  # the test-size networks of --quick

from vpanoptic.models.hub.preprocess import FastPath  # noqa: E402
from vpanoptic.models.hub.zoo import SPECS  # noqa: E402
from vpanoptic.models.street.inference import StreetModel  # noqa: E402
from vpanoptic.types import Frame  # noqa: E402

NO_CUDA = 3  # exit code: no CUDA device, nothing measured

# benchmark name → registry entry (None: the bundled StreetNet)
MODELS = {
    "streetnet": None,
    "detr-r50": "detr-r50-panoptic",
    "mask2former-swin-t": "mask2former-swin-t-coco",
    "mask2former-swin-l": "mask2former-swin-l-coco",
    "maskrcnn-v2": "maskrcnn-v2-coco",
}
# setting → (autocast, channels_last, compile, batch); batch None = the large batch
SETTINGS = {
    "fp32": (None, False, False, 1),
    "fp16": ("fp16", False, False, 1),
    "fp16 + channels_last": ("fp16", True, False, 1),
    "fp16 batch": ("fp16", False, False, None),
    "torch.compile (fp16)": ("fp16", False, True, 1),
}
PIPELINE_MODELS = ("streetnet", "mask2former-swin-t")


@dataclass
class Profile:
    """Sizes of one run: full (a GPU) or quick (test-size networks, small frames)."""

    frame_size: tuple[int, int]  # (width, height)
    big_batch: int
    timed_frames: int  # per cell, at least
    warmup: int  # batches before timing (compile: + 2)
    pipeline_frames: int
    cell_seconds: float  # timing stops after this long (the frames timed so far count)
    min_cell_seconds: float  # a cell starts only with this much budget left
    compile_seconds: float  # ... a torch.compile cell with this much


FULL = Profile((1280, 720), 8, 32, 3, 60, 20.0, 15.0, 90.0)
QUICK = Profile((160, 96), 4, 4, 1, 8, 10.0, 2.0, 10.0)


@dataclass
class Row:
    model: str
    setting: str
    batch: int | None = None
    ms_per_frame: float | None = None
    fps: float | None = None
    peak_mib: float | None = None
    e2e_ratio: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


class CellTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise `CellTimeout` in this (main) thread after `seconds` (SIGALRM; POSIX only)."""
    if not hasattr(signal, "SIGALRM") or seconds <= 0:
        yield
        return

    def handler(signum, frame):
        raise CellTimeout(f"stopped after {seconds:.0f} s (time budget)")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ models
def build_network(name: str, device: torch.device, quick: bool):
    """The network of a benchmark model with random weights (None for StreetNet)."""
    entry = MODELS[name]
    if entry is None:
        return None
    spec = SPECS[entry]
    torch.manual_seed(0)
    with torch.device(device):  # initialise in place on the GPU (fast for Swin-L)
        if spec.family in ("detr", "mask2former"):
            if quick:
                from model_helpers import tiny_hf_network  # type: ignore[import-not-found]  # tests/models, on sys.path

                return tiny_hf_network(spec)
            import transformers as tf

            from vpanoptic.models.hub.hf import random_config

            cls = tf.DetrForSegmentation if spec.family == "detr" else tf.Mask2FormerForUniversalSegmentation
            return cls(random_config(spec)).eval()
        if quick:
            from model_helpers import tiny_panoptic_fpn

            return tiny_panoptic_fpn(spec)  # keeps every detection (6)
        from vpanoptic.models.hub.maskrcnn import PanopticFPN, build_detector

        net = PanopticFPN(build_detector(len(spec.labels)), None).eval()
        heads: Any = net.detector.roi_heads  # torchvision's RoIHeads
        heads.score_thresh = 0.0  # random scores: 100 detections reach the fusion
        heads.detections_per_img = 100
        return net


def build_model(name: str, net, device: torch.device, fast: FastPath, quick: bool):
    """A `PanopticModel` around `net` (or the bundled StreetNet) with the fast-path options."""
    entry = MODELS[name]
    if entry is None:
        from vpanoptic.models.registry import build_model as build_registered

        if fast.compile and device.type == "cpu":
            return build_registered("vpanoptic-street", device=device, backend="compile")
        model = build_registered("vpanoptic-street", device=device, amp=fast.autocast == "fp16",
                                 channels_last=fast.channels_last)
        if fast.compile:  # the model option backend=compile is CPU-only: compile the network here
            assert isinstance(model, StreetModel)
            model.predictor._forward = torch.compile(model.predictor.net)  # type: ignore[assignment]  # a compiled wrapper of the network
        return model
    spec = SPECS[entry]
    if spec.family in ("detr", "mask2former"):
        from vpanoptic.models.hub.hf import QueryPanopticModel

        extra = {"short_side": 64, "max_side": 128} if quick else {}
        return QueryPanopticModel(spec, net, device=device, fast=fast, score_threshold=0.0, **extra)
    from vpanoptic.models.hub.maskrcnn import MaskRCNNPanopticModel

    return MaskRCNNPanopticModel(spec, net, device=device, fast=fast)


def half_context(name: str, device: torch.device, fast: FastPath):
    """StreetNet's half precision on the CPU: its amp option is CUDA-only, so bf16 autocast around it."""
    if MODELS[name] is None and device.type == "cpu" and fast.autocast:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def network_input(name: str, size: tuple[int, int], quick: bool) -> str:
    """The network input size a model works at for frames of `size` (for the table's header)."""
    entry = MODELS[name]
    if entry is None:
        return "384x216 (checkpoint input_size)"
    spec = SPECS[entry]
    if spec.family == "maskrcnn":
        from vpanoptic.models.hub.preprocess import ResizeSpec

        r = ResizeSpec(short_side=64 if quick else 800, max_side=128 if quick else 1333, size_divisor=32)
    else:
        r = spec.resize if not quick else type(spec.resize)(64, 128, spec.resize.size_divisor)
    h, w = r.output_size(size[1], size[0])
    return f"{w}x{h}"


# ------------------------------------------------------------------ timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def time_predict(predict: Callable, frames: list[Frame], batch: int, warmup: int, profile: Profile,
                 device: torch.device) -> tuple[float, int]:
    """Milliseconds per frame of `predict(batch of frames)` and the number of frames timed."""
    def batch_at(i: int) -> list[Frame]:
        return [frames[(i * batch + k) % len(frames)] for k in range(batch)]

    for i in range(warmup):
        predict(batch_at(i))
    synchronize(device)
    n = 0
    t0 = time.perf_counter()
    i = warmup
    while n < profile.timed_frames:
        predict(batch_at(i))
        i += 1
        n += batch
        if time.perf_counter() - t0 > profile.cell_seconds:
            break
    synchronize(device)
    return 1000 * (time.perf_counter() - t0) / n, n


def run_pipeline_cell(name: str, net, device: torch.device, profile: Profile, quick: bool,
                      tmp: Path) -> Row:
    """End-to-end FPS of decode → model (fp16 on CUDA) → tracker → video sink, and of the model alone."""
    from vpanoptic.config import TrackerConfig
    from vpanoptic.io.sources import open_source
    from vpanoptic.job import tracker_from_config
    from vpanoptic.pipeline import Pipeline
    from vpanoptic.sinks import build_sinks
    from vpanoptic.synth import write_sequence

    clip = tmp / "clip"
    if not (clip / "video.mp4").is_file():
        write_sequence(clip, seed=0, frames=profile.pipeline_frames, size=profile.frame_size, fps=30.0)
    video = str(clip / "video.mp4")
    fast = FastPath(autocast="fp16" if device.type == "cuda" else None)
    model = build_model(name, net, device, fast, quick)
    with open_source(video) as src:
        frames = list(src)
    reset_peak(device)
    ms, n = time_predict(lambda b: model.predict(b), frames, 1, profile.warmup, profile, device)
    model_fps = 1000 / ms
    sinks = build_sinks(["video"], tmp / f"out-{name}", fps=30.0)
    pipe = Pipeline(open_source(video), model, tracker_from_config(TrackerConfig(), model.device), sinks)
    stats = pipe.run()
    e2e = stats.processed / stats.wall_time
    summary = stats.summary()
    stage = ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_ms"].items() if v is not None)
    model.close()
    return Row(name, f"pipeline: decode + model ({'fp16' if fast.autocast else 'fp32'}) + tracker + video sink", 1,
               1000 / e2e, e2e, peak_mib(device), e2e / model_fps,
               f"model alone {model_fps:.1f} FPS; {stats.processed} frames; stage ms/frame: {stage}",
               {"model_fps": model_fps, "summary": summary})


# ------------------------------------------------------------------- table
def environment(device: torch.device, args, profile: Profile) -> dict:
    env = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "frame_size": "x".join(map(str, profile.frame_size)),
        "quick": args.quick,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=torch.cuda.get_device_name(device), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    else:
        env.update(gpu=None, cpu=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads())
    return env


def fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def render(env: dict, rows: list[Row], inputs: dict[str, str]) -> str:
    if env.get("gpu"):
        detail = f"{env['gpu']}, {env['gpu_memory_gib']} GiB, CUDA {env['cuda']}, cuDNN {env['cudnn']}"
    else:
        detail = f"{env.get('cpu')}, {env.get('torch_threads')} torch threads"
    head = [
        f"# vpanoptic GPU check — {env.get('gpu') or env['device']}",
        "",
        f"- date (UTC): {env['date_utc']}",
        f"- command: `{env['command']}`",
        f"- device: {env['device']} ({detail})",
        f"- torch {env['torch']}, Python {env['python']}; frames {env['frame_size']}"
        + (" (--quick: test-size networks)" if env["quick"] else ""),
        "- network input per model: " + "; ".join(f"{k} {v}" for k, v in inputs.items()),
        "",
        "| model | setting | batch | ms/frame | FPS | peak GPU MiB | e2e / model | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    body = [
        f"| {r.model} | {r.setting} | {fmt(r.batch, 'd')} | {fmt(r.ms_per_frame, '.1f')} | {fmt(r.fps, '.1f')} | "
        f"{fmt(r.peak_mib, '.0f')} | {fmt(r.e2e_ratio, '.2f')} | {r.note} |"
        for r in rows
    ]
    return "\n".join(head + body) + "\n"


def write_outputs(out: Path, env: dict, rows: list[Row], inputs: dict[str, str]) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = render(env, rows, inputs)
    (out / "table.md").write_text(text)
    results = {"environment": env, "rows": [asdict(r) for r in rows]}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return text


# -------------------------------------------------------------------- main
def resolve(device_arg: str) -> torch.device | None:
    if device_arg == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        return None
    return torch.device("cuda" if device_arg == "auto" else device_arg)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA or stop), cuda, cuda:N or cpu")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds for the whole benchmark")
    ap.add_argument("--out", default="out/gpu_check", help="folder for table.md and results.json")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    ap.add_argument("--quick", action="store_true", help="test-size networks on small frames (checks the script)")
    ap.add_argument("--no-compile", action="store_true", help="leave out the torch.compile cells")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    deadline = t_start + args.budget
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    device = resolve(args.device)
    if device is None:
        print("no CUDA device: torch.cuda.is_available() is false; nothing measured "
              "(`--device cpu --quick` checks this script on the CPU)", flush=True)
        return NO_CUDA
    profile = QUICK if args.quick else FULL
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed frame size: let cuDNN pick its fastest kernels
    env = environment(device, args, profile)
    out = Path(args.out)
    inputs = {n: network_input(n, profile.frame_size, args.quick) for n in names}
    rows: list[Row] = []
    print(f"{env.get('gpu') or device}: {len(names)} models, budget {args.budget:.0f} s", flush=True)

    from vpanoptic.synth import generate

    w, h = profile.frame_size
    frames = [Frame(f.index, f.index, f.time, 0.0, f.image) for f in generate(0, 2 * profile.big_batch, (w, h))]

    def remaining() -> float:
        return deadline - time.monotonic()

    def cell(row: Row, body: Callable[[], Row | None], needs: float) -> None:
        """Run one cell within the budget; a skip or failure is a row with a note."""
        left = remaining()
        if left < needs:
            row.note = f"skipped: {max(left, 0):.0f} s of the time budget left, the cell needs {needs:.0f}"
        else:
            try:
                with time_limit(left - 1):
                    done = body()
                if done is not None:
                    row = done
            except CellTimeout as exc:
                row.note = f"skipped: {exc}"
            except Exception as exc:  # noqa: BLE001 - one failing cell must not lose the table
                text = str(exc).strip()
                if "CellTimeout" in text:  # raised inside torch.compile, which wraps it
                    row.note = "skipped: stopped by the time budget"
                else:
                    row.note = f"failed: {type(exc).__name__}: {text.splitlines()[0][:120] if text else ''}"
                    traceback.print_exc()
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        rows.append(row)
        print(f"  {row.model:<20} {row.setting:<26} {fmt(row.ms_per_frame, '9.1f')} ms  {fmt(row.fps, '7.1f')} FPS  "
              f"{fmt(row.peak_mib, '7.0f')} MiB  {row.note}", flush=True)
        write_outputs(out, env, rows, inputs)

    def model_cell(name: str, nets: dict, setting: str) -> None:
        autocast, channels_last, compile_, batch = SETTINGS[setting]
        batch = batch or profile.big_batch
        label = f"{setting} {batch}" if setting == "fp16 batch" else setting
        row = Row(name, label, batch)

        def body() -> Row:
            if name not in nets:
                nets[name] = build_network(name, device, args.quick)
            net = nets[name]
            if net is not None:
                net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            half = autocast if device.type == "cuda" else (autocast and "bf16")  # CPU half precision: bf16
            fast = FastPath(autocast=half, channels_last=channels_last, compile=compile_)
            model = build_model(name, net, device, fast, args.quick)
            reset_peak(device)
            with half_context(name, device, fast):
                ms, n = time_predict(lambda b: model.predict(b), frames, batch, profile.warmup + 2 * compile_,
                                     profile, device)
            note = f"{n} frames timed"
            if device.type == "cpu" and fast.autocast:
                note += "; CPU half precision is bf16"
            if compile_ and MODELS[name] is None and device.type == "cuda":
                note += "; compiled by the benchmark (the model option backend=compile is CPU-only)"
            result = Row(name, label, batch, ms, 1000 / ms, peak_mib(device), None, note)
            model.close()
            if compile_:
                torch._dynamo.reset()
            return result

        cell(row, body, profile.compile_seconds if compile_ else profile.min_cell_seconds)

    nets: dict = {}
    eager = [s for s in SETTINGS if not SETTINGS[s][2]]
    for name in names:  # 1. eager settings, model by model
        for setting in eager:
            model_cell(name, nets, setting)
        if nets.get(name) is not None:
            nets[name].to("cpu")  # peak memory of the next model without this one's weights
        if device.type == "cuda":
            torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory() as tmp:  # 2. the pipeline
        for name in [n for n in PIPELINE_MODELS if n in names]:
            row = Row(name, "pipeline: decode + model + tracker + video sink", 1)

            def body(name=name) -> Row:
                if name not in nets:
                    nets[name] = build_network(name, device, args.quick)
                net = nets[name]
                if net is not None:
                    net.to(memory_format=torch.contiguous_format)
                return run_pipeline_cell(name, net, device, profile, args.quick, Path(tmp))

            cell(row, body, profile.min_cell_seconds * 2)
            if nets.get(name) is not None:
                nets[name].to("cpu")
    for name in names if not args.no_compile else []:  # 3. torch.compile, the slowest to start
        model_cell(name, nets, "torch.compile (fp16)")
        if nets.get(name) is not None:
            nets[name].to("cpu")

    text = write_outputs(out, env, rows, inputs)
    print()
    print(text, end="")
    print(f"table written to {out / 'table.md'} ({time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # A torch.compile cell stopped by the budget can leave its compile workers waiting; the
    # table is written, so leave without joining them.
    os._exit(code)
