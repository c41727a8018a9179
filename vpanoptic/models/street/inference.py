"""The `vpanoptic-street` model: StreetNet with its bundled weights, the offline default.

    frame (H, W, 3) uint8 ──resize (area) to input_size──▶ StreetNet ──▶ semantic / center / offset
        at stride 4 ──▶ grouping + fusion at frame size (torch, on the device) ──▶ PanopticFrame

Options (``--set model.options.KEY=VALUE``):
    weights: checkpoint path (default: the one shipped in the package; needs ``PATH.sha256``).
    input_size: network input "WxH" (default: the checkpoint's, 384x216 for 640x360 video);
        the outputs are upsampled to the frame size.
    output_scale: grouping and fusion run at this fraction of the frame size (default 0.5), the
        label map is then scaled up (nearest); 1 = at frame size.
    backend: "torch" (eager), "onnx" (ONNX Runtime on the CPU, ``pip install 'vpanoptic[onnx]'``)
        or "compile" (``torch.compile``); README "The default model" has the timings.
    channels_last: NHWC memory format (faster on some CPUs and on CUDA tensor cores).
    amp: float16 autocast on CUDA (ignored on CPU).
    center_threshold, nms_kernel, max_instances, min_instance_area: see `GroupingParams`
        (default: the checkpoint's "grouping" metadata, else `GroupingParams`' defaults).

On its first frames the model checks that the footage is inside the synthetic world it knows
(`domain.DomainCheck`, with the threshold stored in the checkpoint) and, when it is not, adds
one warning to `warnings` naming the models for real footage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from ...datasets import KITTI_STEP
from ...errors import ModelError
from ...types import Frame, PanopticFrame
from ..base import PanopticModel
from ..entry import ModelEntry
from .checkpoint import default_weights_path, load_checkpoint
from .domain import DomainCheck, DomainReference
from .grouping import GroupingParams, group_panoptic, labels_to_segments, resize_labels
from .network import StreetNet, StreetNetConfig, fold_batchnorm

__all__ = ["BACKENDS", "Predictor", "StreetModel", "parse_size"]

DEFAULT_GROUPING = GroupingParams()  # the grouping thresholds when neither options nor checkpoint set them

# How the network runs: eager PyTorch, ONNX Runtime (CPU; the `onnx` extra), torch.compile.
BACKENDS = ("torch", "onnx", "compile")


def parse_size(value) -> tuple[int, int]:
    """"384x216" or (384, 216) → (384, 216); each side 32..4096."""
    try:
        if isinstance(value, str):
            w, h = (int(v) for v in value.lower().split("x"))
        else:
            w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ModelError(f"input_size is {value!r}; expected WIDTHxHEIGHT, e.g. 384x216") from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096):
        raise ModelError(f"input_size is {w}x{h}; expected sides between 32 and 4096")
    return w, h


class Predictor:
    """Network + normalisation + grouping; turns image batches into panoptic label maps.

    Shared by the registered model and the training loop's validation.

    Args:
        input_size: ``(w, h)`` network input; frames are resized to it (area filter, as in training).
        output_scale: grouping runs at this fraction of the frame size, then the label map is
            scaled up (nearest); 1 = at frame size.
    """

    def __init__(self, net: StreetNet, meta: dict, device: torch.device, *, input_size: tuple[int, int],
                 output_scale: float = 1.0, params: GroupingParams = DEFAULT_GROUPING,
                 channels_last: bool = False, amp: bool = True, backend: str = "torch"):
        if not 0 < output_scale <= 1:
            raise ModelError(f"output_scale is {output_scale}; expected 0 < x <= 1")
        if backend not in BACKENDS:
            raise ModelError(f"backend is {backend!r}; expected one of {', '.join(BACKENDS)}")
        if backend != "torch" and device.type != "cpu":
            raise ModelError(f"backend {backend!r} runs on the CPU only; use backend=torch on {device}")
        self.net = net.to(device).eval()
        self.device = device
        self.input_size = input_size
        self.output_scale = float(output_scale)
        self.params = params
        self.channels_last = channels_last
        self.amp = amp and device.type == "cuda"
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.class_ids = torch.tensor(meta["classes"], dtype=torch.int64, device=device)
        self.thing_mask = torch.tensor([c in meta["thing_ids"] for c in meta["classes"]], device=device)
        self.mean = torch.tensor(meta["mean"], device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(meta["std"], device=device).view(1, 3, 1, 1) * 255
        self.backend = backend
        # Called with the semantic logits (B, K, h, w) of every batch (`StreetModel`'s domain check).
        self.observer: Callable[[torch.Tensor], None] | None = None
        self._forward: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] = self.net
        if backend == "onnx":
            self._forward = _onnx_forward(self.net, input_size)
        elif backend == "compile":
            self._forward = torch.compile(self.net)

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``(H, W, 3) uint8`` RGB images (same size) → ``(B, 3, h, w)`` float normalised input."""
        w, h = self.input_size
        if self.device.type == "cpu":  # OpenCV's area filter: the one used in training, and fast
            batch = torch.from_numpy(np.stack([
                im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
                for im in images]))
            x = batch.permute(0, 3, 1, 2).float()
        else:
            batch = torch.from_numpy(np.stack(images)).to(self.device, non_blocking=True)
            x = batch.permute(0, 3, 1, 2).float()
            if x.shape[-2:] != (h, w):
                x = F.interpolate(x, size=(h, w), mode="area" if h <= x.shape[-2] else "bilinear")
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def labels(self, images: Sequence[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """Per image: ``(labels (h, w) int64, scores (M1,) float, M1)``, see `group_panoptic`.

        The label maps are at ``output_scale`` times the frame size; `resize_labels` scales them up.
        """
        height, width = images[0].shape[:2]
        work = (max(1, round(height * self.output_scale)), max(1, round(width * self.output_scale)))
        x = self.preprocess(images)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            sem, center, offset = self._forward(x)
        if self.observer is not None:
            self.observer(sem)
        out = []
        for i in range(len(images)):
            labels, scores, m1 = group_panoptic(sem[i].float(), center[i].float(), offset[i].float(), work,
                                                self.thing_mask, self.params, frame_size=(height, width))
            out.append((labels, scores, m1))
        return out

    @torch.inference_mode()
    def semantic_logits(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``(H, W, 3) uint8`` RGB images (same size) → ``(B, K, h, w)`` float semantic logits at stride 4."""
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            sem = self._forward(self.preprocess(images))[0]
        return sem.float()

    def semantic_instance(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """STEP-style ``(semantic train ids, instance ids)`` numpy maps per image (for evaluation)."""
        result = []
        size = images[0].shape[:2]
        for labels, _, m1 in self.labels(images):
            labels = resize_labels(labels, size)
            sem = self.class_ids[torch.div(labels, m1, rounding_mode="floor")]
            inst = labels % m1
            result.append((sem.to(torch.int32).cpu().numpy(), inst.to(torch.int32).cpu().numpy()))
        return result


def _onnx_forward(net: StreetNet, input_size: tuple[int, int]):
    """The network exported to ONNX at `input_size` and run by ONNX Runtime (CPU, torch's thread count)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("backend=onnx needs ONNX Runtime: pip install 'vpanoptic[onnx]'") from None
    import io
    import warnings

    w, h = input_size
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(net.float().cpu(), (torch.zeros(1, 3, h, w),), buf,  # type: ignore[arg-type]
                              input_names=["image"], output_names=["semantic", "center", "offset"], opset_version=17,
                              dynamic_axes={"image": {0: "batch"}}, dynamo=False)
        except ImportError:
            raise ModelError("backend=onnx needs the onnx package: pip install 'vpanoptic[onnx]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])

    def forward(x: torch.Tensor):
        outs = session.run(None, {"image": np.ascontiguousarray(x.numpy())})
        return tuple(torch.from_numpy(o) for o in outs)

    return forward


class StreetModel(PanopticModel):
    def __init__(
        self,
        *,
        device: torch.device | str = "cpu",
        weights: str | None = None,
        input_size: str | None = None,
        output_scale: float = 0.5,
        backend: str = "torch",
        channels_last: bool = False,
        amp: bool = True,
        center_threshold: float | None = None,
        nms_kernel: int | None = None,
        max_instances: int | None = None,
        min_instance_area: int | None = None,
    ):
        self.device = torch.device(device)
        self.meta = KITTI_STEP
        ckpt = load_checkpoint(weights)
        try:
            net = StreetNet(StreetNetConfig.from_dict(ckpt["config"]))
            net.load_state_dict(ckpt["state_dict"])
        except (TypeError, RuntimeError) as exc:
            raise ModelError(f"checkpoint {weights or 'streetnet.pt'} does not fit StreetNet: {exc}") from None
        self.checkpoint_meta = ckpt["meta"]
        try:
            given = {"center_threshold": center_threshold, "nms_kernel": nms_kernel,
                     "max_instances": max_instances, "min_instance_area": min_instance_area}
            # unset options: the checkpoint's own defaults (meta "grouping"), then GroupingParams'
            defaults = {k: v for k, v in dict(self.checkpoint_meta.get("grouping") or {}).items() if k in given}
            params = GroupingParams(**{**defaults, **{k: v for k, v in given.items() if v is not None}})
        except ValueError as exc:
            raise ModelError(f"model 'vpanoptic-street': {exc}") from None
        size = parse_size(input_size if input_size is not None else self.checkpoint_meta["input_size"])
        self.predictor = Predictor(fold_batchnorm(net), self.checkpoint_meta, self.device, input_size=size,
                                   output_scale=float(output_scale), params=params, backend=str(backend),
                                   channels_last=bool(channels_last), amp=bool(amp))
        # None: a checkpoint without a calibrated reference (see `domain.calibrate`) is not checked.
        self.domain_reference = DomainReference.from_meta(self.checkpoint_meta)
        self.domain: DomainCheck | None = None
        self.begin_input()

    def begin_input(self) -> None:
        """A new input: its first frames are checked against the synthetic world afresh."""
        super().begin_input()
        if self.domain_reference is not None:
            self.domain = DomainCheck(self.domain_reference, self.warnings)
            self.predictor.observer = self.domain.observe

    def predict(self, frames: Sequence[Frame]) -> list[PanopticFrame]:
        out: list[PanopticFrame] = []
        pred = self.predictor
        k = len(pred.class_ids)
        for frame, (labels, scores, m1) in zip(frames, pred.labels([f.image for f in frames])):
            id_map, seg_labels = labels_to_segments(labels, m1, k)  # compact ids, then one resize
            id_map = resize_labels(id_map, frame.image.shape[:2])
            seg = seg_labels.cpu()
            cls = torch.div(seg, m1, rounding_mode="floor")
            inst = (seg % m1).numpy()
            cats = pred.class_ids.cpu()[cls].numpy().astype(np.int32)
            seg_scores = np.where(inst > 0, scores.cpu().numpy()[inst], 1.0).astype(np.float32)
            out.append(PanopticFrame(
                frame=frame,
                id_map=id_map,
                segment_ids=np.arange(1, len(seg) + 1, dtype=np.int32),
                category_ids=cats,
                meta=self.meta,
                scores=seg_scores,
            ))
        return out


ENTRY = ModelEntry(
    name="vpanoptic-street",
    dataset="kitti-step",
    description="StreetNet, a compact bottom-up panoptic network trained on the synthetic street world "
                "(bundled weights, CPU real time); the default",
    factory=StreetModel,
    weights_cached=lambda: default_weights_path().is_file(),
)
