"""Pretrained weights: where they come from, where they are cached, how they are verified.

Two publishers are supported:

- ``url`` files (torchvision): cached in ``$TORCH_HOME/hub/checkpoints/`` (torch.hub's own
  cache); torchvision names its files ``<name>-<first 8 hex of sha256>.pth``, and that
  prefix is checked on download and on load. ``VPANOPTIC_TORCHVISION_URL`` points the
  downloads at a mirror (a base URL that serves the same file names).
- ``hf`` repositories (Hugging Face hub): cached in ``$HF_HOME/hub/`` by `huggingface_hub`;
  large files are stored under their sha256 (the LFS object id), which is checked here.
  ``HF_ENDPOINT`` points the downloads at a mirror.

Before any download the endpoint is probed once with a short timeout (`probe`), so a
machine without network learns it within seconds, in one line that names the route that
works (``--weights``, ``vpanoptic models fetch`` / ``import``), instead of after the
download libraries' retries. ``VPANOPTIC_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) skips the
network altogether.

Nothing is ever unpickled: ``.safetensors`` files are read with safetensors and ``.pth`` /
``.bin`` files with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = [
    "OFFLINE_ENV",
    "TORCHVISION_URL_ENV",
    "WeightSource",
    "check_state_dict",
    "fetch_hf_snapshot",
    "fetch_url_weights",
    "hf_cache_dir",
    "hf_endpoint",
    "is_cached",
    "is_offline",
    "load_state_dict",
    "probe",
    "sha256_of",
    "torch_cache_dir",
    "url_of",
    "verify_file",
]

# Set to 1 to forbid any download attempt (tests, air-gapped machines). HF_HUB_OFFLINE=1 counts too.
OFFLINE_ENV = "VPANOPTIC_OFFLINE"
# Base URL of a mirror of torchvision's weights (the same file names as download.pytorch.org/models/).
TORCHVISION_URL_ENV = "VPANOPTIC_TORCHVISION_URL"
TORCHVISION_BASE = "https://download.pytorch.org/models/"
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # an endpoint that does not answer within this is taken as unreachable
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
            return url_of(self)
        return f"{hf_endpoint()}/{self.location} (revision {self.revision})"


def is_offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes") for k in (OFFLINE_ENV, "HF_HUB_OFFLINE"))


def hf_endpoint() -> str:
    """The Hugging Face hub to download from: ``$HF_ENDPOINT`` (a mirror) or huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def url_of(source: WeightSource) -> str:
    """The URL a ``url`` source is downloaded from: its own, or the same file on ``$VPANOPTIC_TORCHVISION_URL``."""
    mirror = os.environ.get(TORCHVISION_URL_ENV, "").strip()
    if mirror and source.location.startswith(TORCHVISION_BASE):
        return mirror.rstrip("/") + "/" + source.location[len(TORCHVISION_BASE):]
    return source.location


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the server of `url` answers an HTTP HEAD within `timeout` s, else the reason it does not.

    Any HTTP status counts as an answer. The request runs in a daemon thread so that a name
    lookup that hangs (no DNS server answering) is bounded by `timeout` too. Proxies of the
    environment (``https_proxy``, ...) are used, as the downloads use them.
    """
    result: list[str | None] = []

    def head() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            result.append(None)
        except urllib.error.HTTPError:  # the server answered
            result.append(None)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            result.append(str(reason) or type(exc).__name__)

    # Not a pipeline thread: it may outlive this call by up to a socket timeout.
    thread = threading.Thread(target=head, daemon=True, name="weights-endpoint-probe")
    thread.start()
    thread.join(timeout + 0.5)
    return result[0] if result else f"no answer within {timeout:g} s"


def torch_cache_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch.hub's cache; defaults to ~/.cache/torch)."""
    if "torch" in sys.modules:  # respects torch.hub.set_dir()
        return Path(sys.modules["torch"].hub.get_dir()) / "checkpoints"
    home = os.environ.get("TORCH_HOME") or os.path.join(_xdg_cache(), "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def _xdg_cache() -> str:
    return os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))


def hf_cache_dir() -> Path:
    """``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` (defaults to ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(_xdg_cache(), "huggingface")
    return Path(home) / "hub"


def hf_repo_dir(source: WeightSource, cache: Path | None = None) -> Path:
    """The folder of `source`'s repository in the hub cache (``models--OWNER--NAME``)."""
    return (cache or hf_cache_dir()) / ("models--" + source.location.replace("/", "--"))


def _hf_snapshot_dirs(source: WeightSource, cache: Path | None = None) -> list[Path]:
    repo = hf_repo_dir(source, cache)
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
            f"weights file {path} fails its checksum (sha256 should start with {expected}); "
            "delete it and fetch it again"
        )


def route_hint(model: str) -> str:
    """The ways to get weights onto a machine that cannot download them (one clause)."""
    return (
        f"pass --weights PATH, or run `vpanoptic models fetch {model} --to DIR` on a connected machine "
        "and `vpanoptic models import DIR` here (mirrors: HF_ENDPOINT, VPANOPTIC_TORCHVISION_URL; see docs/models.md)"
    )


def _offline_error(
    source: WeightSource, cache: Path, model: str, reason: str | None = None, *, reached: bool = False
) -> ModelError:
    where = url_of(source) if source.kind == "url" else hf_endpoint()
    if reason is None:
        why = f"downloads from {where} are off ({OFFLINE_ENV})"
    else:
        why = f"the download from {where} failed ({reason})" if reached else f"{where} cannot be reached ({reason})"
    return ModelError(
        f"model {model!r} needs weights file {source.filename}, not cached in {cache}, and {why}: {route_hint(model)}"
    )


def _expected_sha256(source: WeightSource) -> str | None:
    if source.sha256 is not None:
        return source.sha256
    m = _TORCHVISION_HASH.search(source.filename)
    return m.group(1) if m else None


def verify_file(path: Path, source: WeightSource) -> None:
    """Check a local copy of `source`'s file against the published checksum (`ModelError` if it differs)."""
    _verify(path, _expected_sha256(source))


def _check_reachable(source: WeightSource, cache: Path, model: str, url: str) -> None:
    if is_offline():
        raise _offline_error(source, cache, model)
    reason = probe(url)
    if reason is not None:
        raise _offline_error(source, cache, model, reason)


def fetch_url_weights(source: WeightSource, model: str, cache: Path | None = None) -> Path:
    """Path of the cached file of a ``url`` source, downloading it once when allowed.

    cache: the folder to use instead of torch.hub's (e.g. a folder being exported).
    """
    cache = cache or torch_cache_dir()
    path = cache / source.filename
    expected = _expected_sha256(source)
    if not path.is_file():
        url = url_of(source)
        _check_reachable(source, cache, model, url)
        cache.mkdir(parents=True, exist_ok=True)
        download_file(url, path, sha256_prefix=expected)
    _verify(path, expected)
    return path


def download_file(
    url: str,
    dest: Path,
    *,
    sha256_prefix: str | None = None,
    attempts: int = 4,
    timeout: float = 30.0,
    progress: bool = True,
) -> None:
    """Download `url` to `dest` through a temporary file beside it, resuming after a cut connection.

    The file appears at `dest` only complete and matching `sha256_prefix`; otherwise a
    `ModelError` is raised and nothing is left behind. A connection that breaks is resumed
    with an HTTP ``Range`` request, up to `attempts` tries (the count restarts whenever bytes arrive).
    """
    from tqdm import tqdm

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.incomplete")
    failure: Exception | None = None
    try:
        with open(tmp, "wb") as fh:
            tries = attempts
            total: int | None = None
            while tries > 0:
                tries -= 1
                done = fh.tell()
                if total is not None and done >= total:
                    break
                request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
                try:
                    with urllib.request.urlopen(request, timeout=timeout) as resp:
                        if done and resp.status != 206:  # the server ignored the range: start over
                            fh.seek(0)
                            fh.truncate()
                        length = resp.headers.get("Content-Length")
                        if length is not None:
                            total = fh.tell() + int(length)
                        with tqdm(total=total, initial=fh.tell(), unit="B", unit_scale=True, desc=dest.name,
                                  disable=not progress, leave=False) as bar:
                            while block := resp.read(1 << 20):
                                fh.write(block)
                                bar.update(len(block))
                                tries = attempts
                    if total is None or fh.tell() >= total:
                        break
                except urllib.error.HTTPError as exc:
                    raise ModelError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
                except (OSError, ValueError, http.client.HTTPException) as exc:  # cut connection, timeout
                    failure = exc
                    time.sleep(0.5)
            else:
                raise ModelError(f"cannot download {url}: {failure} (after {attempts} tries)")
        if total is not None and tmp.stat().st_size != total:
            raise ModelError(f"cannot download {url}: got {tmp.stat().st_size} of {total} bytes")
        digest = sha256_of(tmp)
        if sha256_prefix and not digest.startswith(sha256_prefix.lower()):
            raise ModelError(
                f"downloaded {url} fails its checksum (sha256 {digest[:12]}..., expected {sha256_prefix}...); "
                "refused, not cached"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_hf_snapshot(source: WeightSource, model: str, cache: Path | None = None) -> Path:
    """Folder of a cached hub snapshot holding `source.files` (or an alternate), downloading them once when allowed.

    cache: the hub cache folder to use instead of ``$HF_HOME/hub`` (e.g. a folder being exported).
    """
    cache = cache or hf_cache_dir()
    for files in source.variants():
        for snap in _hf_snapshot_dirs(source, cache):
            if all((snap / f).is_file() for f in files):
                _verify_hf_blobs(snap, files)
                return snap
    endpoint = hf_endpoint()
    _check_reachable(source, cache, model, endpoint)
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError:
        raise ModelError(f"model {model!r} needs the Hugging Face extra: pip install 'vpanoptic[hf]'") from None
    failure: Exception | None = None
    for files in source.variants():
        try:
            paths = [
                hf_hub_download(source.location, f, revision=source.revision, cache_dir=cache, endpoint=endpoint)
                for f in files
            ]
        except EntryNotFoundError as exc:  # not published under this name: try the next name
            failure = exc
            continue
        except Exception as exc:  # refused, cut off for good, not a hub: one line with the route
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise _offline_error(source, cache, model, f"{type(exc).__name__}: {first}", reached=True) from None
        snap = Path(paths[0]).parent
        try:
            _verify_hf_blobs(snap, files)
        except ModelError:
            _remove_snapshot_files(snap, files)
            raise ModelError(
                f"a file of {source.location} downloaded from {endpoint} fails its checksum (sha256 differs from its "
                "LFS id); refused and removed from the cache"
            ) from None
        return snap
    raise ModelError(
        f"model {model!r}: {source.location} at {endpoint} publishes none of the names of {source.filename} ({failure})"
    )


def _remove_snapshot_files(snapshot: Path, files: tuple[str, ...]) -> None:
    for f in files:
        link = snapshot / f
        real = link.resolve()
        if _HEX64.match(real.name):
            real.unlink(missing_ok=True)
            link.unlink(missing_ok=True)


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
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"weights file {path} cannot be read ({type(exc).__name__}); it is corrupted or not a checkpoint"
        ) from None
    for key in ("model", "state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights file {path} holds no state dict (a mapping of names to tensors)")
    return dict(state)


def check_state_dict(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path | str, model: str
) -> None:
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
