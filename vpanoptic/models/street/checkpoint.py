"""StreetNet checkpoints: one ``.pt`` file (weights + metadata) and a ``.sha256`` beside it.

The file holds only tensors and plain Python values, so it loads with
``torch.load(..., weights_only=True)``. Its SHA-256 is checked against the ``.sha256`` file
before anything is unpickled: a tampered or truncated checkpoint is refused with a
`ModelError` naming the file.

Layout of the loaded dict:
    format: "vpanoptic-streetnet/1"
    config: `StreetNetConfig.to_dict()`
    meta: {classes (Cityscapes train ids), class_names, thing_ids, dataset, mean, std,
           input_size [w, h], train: {seed, steps, ...}, validation: {PQ, STQ, ...}}
    state_dict: the network's weights (float32, or float16 to halve the file)
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources
from pathlib import Path

import torch

from ...errors import ModelError

__all__ = ["DEFAULT_WEIGHTS", "FORMAT", "default_weights_path", "load_checkpoint", "save_checkpoint", "sha256_of"]

FORMAT = "vpanoptic-streetnet/1"
DEFAULT_WEIGHTS = "streetnet.pt"   # in vpanoptic/models/weights/
_REQUIRED = ("format", "config", "meta", "state_dict")


def default_weights_path() -> Path:
    """The checkpoint shipped inside the package (a file on disk: packages are installed unzipped).

    Anchored on the regular package `vpanoptic.models`, joined one name at a time (see
    `vpanoptic.datasets._load_categories`).
    """
    return Path(str(resources.files("vpanoptic.models") / "weights" / DEFAULT_WEIGHTS))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(path: str | Path, config: dict, meta: dict, state_dict: dict, *, half: bool = True) -> str:
    """Write `path` and ``path.sha256``; returns the hex digest.

    `half` stores floating-point weights as float16 (loaded back as float32).
    """
    path = Path(path)
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
             for k, v in state_dict.items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "config": config, "meta": meta, "state_dict": state}, buf)
    data = buf.getvalue()
    digest = sha256_of(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return digest


def _expected_digest(path: Path) -> str:
    side = path.with_name(path.name + ".sha256")
    if not side.is_file():
        raise ModelError(f"checkpoint {path} has no checksum file {side.name} beside it "
                         f"(write one with: sha256sum {path.name} > {side.name})")
    text = side.read_text().split()
    if not text or len(text[0]) != 64:
        raise ModelError(f"checksum file {side} is malformed; expected '<64 hex digits>  {path.name}'")
    return text[0].lower()


def load_checkpoint(path: str | Path | None = None, *, expected_sha256: str | None = None) -> dict:
    """Verify and load a checkpoint (default: the shipped one) on the CPU.

    The digest is `expected_sha256` or the content of ``path.sha256``. Raises `ModelError`
    for a missing file, a digest mismatch (tampered or truncated file) or a wrong layout.
    """
    path = default_weights_path() if path is None else Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path} (retrain with `vpanoptic train`, see README)")
    expected = (expected_sha256 or _expected_digest(path)).lower()
    data = path.read_bytes()
    digest = sha256_of(data)
    if digest != expected:
        raise ModelError(f"checkpoint {path} is corrupt or was modified: sha256 {digest[:12]}... "
                         f"!= expected {expected[:12]}... ({len(data)} bytes); reinstall vpanoptic or retrain")
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpicklable, truncated, not a torch file
        raise ModelError(f"checkpoint {path} cannot be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED) or ckpt["format"] != FORMAT:
        raise ModelError(f"checkpoint {path} is not a {FORMAT} checkpoint")
    ckpt["state_dict"] = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    return ckpt
