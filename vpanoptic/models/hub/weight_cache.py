"""Pretrained weights: where they come from, where they are cached, how they are verified.

Two publishers are supported:

- ``url`` files (torchvision): cached in ``$TORCH_HOME/hub/checkpoints/`` (torch.hub's own
  cache); torchvision names its files ``<name>-<first 8 hex of sha256>.pth``, and that
  prefix is checked on download and on load.
- ``hf`` repositories (Hugging Face hub): cached in ``$HF_HOME/hub/`` by `huggingface_hub`;
  large files are stored under their sha256 (the LFS object id), which is checked here.

Nothing is ever unpickled: ``.safetensors`` files are read with safetensors and ``.pth`` /
``.bin`` files with ``torch.load(..., weights_only=True)``. With no network and no cached
file, `ModelError` names the file, the cache folder and the command that fetches it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from ...errors import ModelError

__all__ = [
    "OFFLINE_ENV",
    "WeightSource",
    "check_state_dict",
    "fetch_hf_snapshot",
    "fetch_url_weights",
    "hf_cache_dir",
    "is_cached",
    "is_offline",
    "load_state_dict",
    "sha256_of",
    "torch_cache_dir",
    "verify_file",
]

# Set to 1 to forbid any download attempt (tests, air-gapped machines). HF_HUB_OFFLINE=1 counts too.
OFFLINE_ENV = "VPANOPTIC_OFFLINE"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TORCHVISION_HASH = re.compile(r"-([0-9a-f]{8,})\.")


@dataclass(frozen=True)
class WeightSource:
    """Where a model's published weights live.

    kind: "url" (one file, e.g. torchvision) or "hf" (a Hugging Face hub repository).
    location: the URL, or the hub repository id ("facebook/detr-resnet-50-panoptic").
    files: for "hf", the files of the repository the model needs (config first, weights last).
    alternates: for "hf", other names of the weights file, tried in order when the first is
        not published (``pytorch_model.bin``: loaded by transformers with ``weights_only=True``).
    revision: hub revision (branch, tag or commit).
    sha256: the published checksum, or its published prefix (torchvision file names carry 8+ hex).
    """

    kind: str
    location: str
    files: tuple[str, ...] = ()
    alternates: tuple[str, ...] = ()
    revision: str = "main"
    sha256: str | None = None

    def __post_init__(self):
        if self.kind not in ("url", "hf"):
            raise ValueError(f"WeightSource.kind is {self.kind!r}; expected 'url' or 'hf'")

    @property
    def filename(self) -> str:
        """The file a user must provide (the URL's basename, or the hub repo's weights file)."""
        if self.kind == "url":
            return self.location.rsplit("/", 1)[-1]
        return f"{self.location}/{self.files[-1]}"

    def variants(self) -> list[tuple[str, ...]]:
        """The file sets that satisfy an "hf" source: `files`, then each alternate weights file."""
        return [self.files] + [self.files[:-1] + (alt,) for alt in self.alternates]

    def describe(self) -> str:
        if self.kind == "url":
            return self.location
        return f"https://huggingface.co/{self.location} (revision {self.revision})"


def is_offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes") for k in (OFFLINE_ENV, "HF_HUB_OFFLINE"))


def torch_cache_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch.hub's cache; defaults to ~/.cache/torch)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_cache_dir() -> Path:
    """``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` (defaults to ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface")
    return Path(home) / "hub"


def _hf_snapshot_dirs(source: WeightSource) -> list[Path]:
    repo = hf_cache_dir() / ("models--" + source.location.replace("/", "--"))
    ref = repo / "refs" / source.revision
    if ref.is_file():
        return [repo / "snapshots" / ref.read_text().strip()]
    snap = repo / "snapshots" / source.revision
    return [snap] if snap.is_dir() else []


def is_cached(source: WeightSource | None) -> bool:
    """True when every file of `source` is in the local cache (no network access)."""
    if source is None:
        return False
    if source.kind == "url":
        return (torch_cache_dir() / source.filename).is_file()
    return any(all((d / f).is_file() for f in files) for d in _hf_snapshot_dirs(source) for files in source.variants())


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str | None) -> None:
    if expected and not sha256_of(path).startswith(expected.lower()):
        raise ModelError(
            f"weights file {path} fails its checksum (sha256 should start with {expected}); delete it and fetch it again"
        )


def _offline_error(source: WeightSource, cache: Path, model: str) -> ModelError:
    if source.kind == "url":
        fetch = f"curl -L -o {source.filename} {source.location}"
    else:
        fetch = f"hf download {source.location} {' '.join(source.files)} --revision {source.revision}"
    return ModelError(
        f"model {model!r} needs weights file {source.filename}, which is not cached in {cache} and cannot be downloaded here; "
        f"on a connected machine run `{fetch}`, then copy it into {cache} or pass --weights PATH"
    )


def _expected_sha256(source: WeightSource) -> str | None:
    if source.sha256 is not None:
        return source.sha256
    m = _TORCHVISION_HASH.search(source.filename)
    return m.group(1) if m else None


def verify_file(path: Path, source: WeightSource) -> None:
    """Check a local copy of `source`'s file against the published checksum (`ModelError` if it differs)."""
    _verify(path, _expected_sha256(source))


def fetch_url_weights(source: WeightSource, model: str) -> Path:
    """Path of the cached file of a ``url`` source, downloading it once when allowed."""
    cache = torch_cache_dir()
    path = cache / source.filename
    expected = _expected_sha256(source)
    if not path.is_file():
        if is_offline():
            raise _offline_error(source, cache, model)
        cache.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(source.location, str(path), hash_prefix=expected, progress=True)
        except Exception as exc:  # network failure, refused, bad hash (the partial file is removed by torch)
            raise _offline_error(source, cache, model) from exc
    _verify(path, expected)
    return path


def fetch_hf_snapshot(source: WeightSource, model: str) -> Path:
    """Folder of a cached hub snapshot holding `source.files` (or an alternate), downloading them once when allowed."""
    for files in source.variants():
        for snap in _hf_snapshot_dirs(source):
            if all((snap / f).is_file() for f in files):
                _verify_hf_blobs(snap, files)
                return snap
    if is_offline():
        raise _offline_error(source, hf_cache_dir(), model)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelError(f"model {model!r} needs the Hugging Face extra: pip install 'vpanoptic[hf]'") from None
    failure: Exception | None = None
    for files in source.variants():
        try:
            paths = [hf_hub_download(source.location, f, revision=source.revision, cache_dir=hf_cache_dir()) for f in files]
        except Exception as exc:  # offline, refused, not published under this name: try the next name
            failure = exc
            continue
        snap = Path(paths[0]).parent
        _verify_hf_blobs(snap, files)
        return snap
    raise _offline_error(source, hf_cache_dir(), model) from failure


def _verify_hf_blobs(snapshot: Path, files: tuple[str, ...]) -> None:
    """LFS blobs are stored under their sha256: check that each weights file still matches its name."""
    for f in files:
        real = (snapshot / f).resolve()
        if _HEX64.match(real.name) and real.suffix == "":
            _verify(real, real.name)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pth``/``.pt``/``.bin`` file, without unpickling code.

    A file that cannot be parsed (truncated, corrupted, a pickle with code) is a `ModelError`.
    Checkpoints that wrap the weights in ``{"model": ...}`` or ``{"state_dict": ...}`` are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"weights file {path} cannot be read ({type(exc).__name__}); it is corrupted or not a checkpoint") from None
    for key in ("model", "state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights file {path} holds no state dict (a mapping of names to tensors)")
    return dict(state)


def check_state_dict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path | str, model: str) -> None:
    """Load `state` into `module` strictly; a mismatch is one `ModelError` line with examples."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise ModelError(f"weights file {path} does not fit model {model!r}: {', '.join(parts)}")
    module.load_state_dict(state, strict=True)
