"""Weights that travel: ``vpanoptic models fetch NAME [--to DIR]`` and ``vpanoptic models import DIR``.

A **portable weights folder** is ``DIR/NAME/`` holding the entry's files as published, flat
(``config.json`` + ``model.safetensors`` of a hub repository, or the torchvision ``.pth``),
and ``manifest.json``::

    {"format": "vpanoptic-weights", "version": 1, "model": "detr-r50-panoptic",
     "kind": "hf", "location": "facebook/detr-resnet-50-panoptic", "revision": "main",
     "commit": "<40 hex: the hub commit the files came from>",
     "files": [{"name": "config.json", "size": 1234, "sha256": "<64 hex>", "etag": "<hub etag>"}, ...]}

``import`` checks every file against its size and sha256 (and a torchvision file against
the hash prefix in its name), then places it where the download would have: a hub
repository in huggingface_hub's cache layout (``models--OWNER--NAME/blobs/<etag>``,
``snapshots/<commit>/<file>`` linked to the blob, ``refs/<revision>``), a torchvision file
in torch.hub's ``checkpoints`` folder. A hub-layout folder also works directly with
``--weights DIR/NAME``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import ModelError
from .weight_cache import (
    WeightSource,
    fetch_hf_snapshot,
    fetch_url_weights,
    hf_cache_dir,
    hf_repo_dir,
    is_cached,
    sha256_of,
    torch_cache_dir,
    verify_file,
)

__all__ = ["FORMAT", "MANIFEST", "export_weights", "fetch_weights", "import_weights", "read_manifest", "source_of"]

MANIFEST = "manifest.json"
FORMAT = "vpanoptic-weights"
VERSION = 1
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def source_of(name: str, spec: Any) -> WeightSource:
    """The published weights of model `name`, from its registry entry's `spec` (`ModelError` when it has none)."""
    source = getattr(spec, "weights", None)
    if not isinstance(source, WeightSource):
        raise ModelError(f"model {name!r} has no published weights to fetch (it needs none, or your own --weights)")
    return source


def fetch_weights(name: str, source: WeightSource) -> Path:
    """Download the published weights `source` of model `name` into the standard cache; the cached file or folder."""
    if source.kind == "url":
        return fetch_url_weights(source, name)
    return fetch_hf_snapshot(source, name)


def export_weights(name: str, source: WeightSource, to: str | Path) -> Path:
    """Write the portable folder ``to/NAME`` of model `name` (from the cache, or downloaded without touching it)."""
    root = Path(to).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=root) as tmp:
        staging = Path(tmp) / name
        staging.mkdir()
        files: list[tuple[str, Path, str | None]] = []  # (name, local path, hub etag)
        if source.kind == "url":
            cached = torch_cache_dir() / source.filename
            path = cached if cached.is_file() else fetch_url_weights(source, name, cache=Path(tmp) / "download")
            verify_file(path, source)
            files.append((source.filename, path, None))
            commit = None
        else:
            cache = hf_cache_dir() if is_cached(source) else Path(tmp) / "download"
            snap = fetch_hf_snapshot(source, name, cache=cache)
            commit = snap.name
            for variant in source.variants():
                if all((snap / f).is_file() for f in variant):
                    files = [(f, snap / f, (snap / f).resolve().name) for f in variant]
                    break
        entries = []
        for fname, path, etag in files:
            shutil.copyfile(path, staging / fname)  # follows the cache's links
            entry: dict[str, Any] = {"name": fname, "size": (staging / fname).stat().st_size,
                                     "sha256": sha256_of(staging / fname)}
            if etag and (_COMMIT.match(etag) or _HEX64.match(etag)):
                entry["etag"] = etag
            entries.append(entry)
        manifest = {"format": FORMAT, "version": VERSION, "model": name, "kind": source.kind,
                    "location": source.location, "revision": source.revision, "commit": commit, "files": entries}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # the folder appears complete or not at all
    return target


def read_manifest(folder: Path) -> dict[str, Any]:
    """The checked ``manifest.json`` of a portable folder (`ModelError` when it is not one)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder} holds no {MANIFEST}: not written by `vpanoptic models fetch --to`") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path} is not a vpanoptic weights manifest (format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise ModelError(f"{path} has manifest version {manifest.get('version')}; this vpanoptic reads {VERSION}")
    kind, files = manifest.get("kind"), manifest.get("files")
    if kind not in ("url", "hf") or not isinstance(files, list) or not files:
        raise ModelError(f"{path}: 'kind' must be 'url' or 'hf' and 'files' a non-empty list")
    if kind == "hf" and not _COMMIT.match(str(manifest.get("commit"))):
        raise ModelError(f"{path}: a hub repository needs its 'commit' (40 hex digits)")
    for f in files:
        name = f.get("name") if isinstance(f, dict) else None
        if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", "..") or name == MANIFEST:
            raise ModelError(f"{path}: bad file entry {f!r}")
        if not _HEX64.match(str(f.get("sha256"))) or not isinstance(f.get("size"), int):
            raise ModelError(f"{path}: file {name!r} needs its 'size' and 'sha256' (64 hex digits)")
    return manifest


def _portable_folders(folder: Path) -> list[Path]:
    if (folder / MANIFEST).is_file():
        return [folder]
    found = sorted(p.parent for p in folder.glob(f"*/{MANIFEST}"))
    if not found:
        raise ModelError(f"{folder} and its subfolders hold no {MANIFEST} (written by `vpanoptic models fetch --to`)")
    return found


def import_weights(folder: str | Path, spec_of: Callable[[str], Any]) -> list[tuple[str, Path]]:
    """Place the portable folder(s) in `folder` (one ``NAME/`` or a ``--to`` root of several) into the caches.

    spec_of: model name → its registry entry's spec (whose ``weights`` the manifest must match).
    Every file is checked first; a folder with a bad file is refused whole. Returns (model, cached path) pairs.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ModelError(f"weights folder {root} does not exist")
    done = []
    for sub in _portable_folders(root):
        manifest = read_manifest(sub)
        _check_files(sub, manifest)
        name = str(manifest.get("model"))
        _check_model(source_of(name, spec_of(name)), name, manifest)
        done.append((name, _place_url(sub, manifest) if manifest["kind"] == "url" else _place_hf(sub, manifest)))
    return done


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    for f in manifest["files"]:
        path = folder / f["name"]
        if not path.is_file():
            raise ModelError(f"{folder}: file {f['name']} listed in {MANIFEST} is missing")
        if path.stat().st_size != f["size"] or sha256_of(path) != f["sha256"]:
            raise ModelError(f"{path} does not match its sha256 in {MANIFEST} (damaged or altered); nothing imported")


def _check_model(source: WeightSource, name: str, manifest: dict[str, Any]) -> None:
    """The manifest must describe the weights `source` that the registered model `name` loads."""
    if (source.kind, source.location) != (manifest["kind"], manifest["location"]):
        raise ModelError(
            f"{MANIFEST} holds weights {manifest['location']}, but model {name!r} loads {source.location}"
        )
    if source.kind == "url":
        if [f["name"] for f in manifest["files"]] != [source.filename]:
            raise ModelError(f"{MANIFEST} of {name!r} must list exactly {source.filename}")
    else:
        names = {f["name"] for f in manifest["files"]}
        if not any(set(v) <= names for v in source.variants()):
            raise ModelError(f"{MANIFEST} of {name!r} lacks files of {source.location} ({', '.join(source.files)})")


def _place_url(folder: Path, manifest: dict[str, Any]) -> Path:
    f = manifest["files"][0]
    source = WeightSource("url", manifest["location"])
    verify_file(folder / f["name"], source)  # torchvision's hash prefix too
    cache = torch_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return _copy_atomic(folder / f["name"], cache / f["name"])


def _git_blob_sha1(path: Path) -> str:
    """The hub's etag of a file kept in git (not LFS): git's blob id."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _place_hf(folder: Path, manifest: dict[str, Any]) -> Path:
    """huggingface_hub's layout: blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>, refs/<revision>."""
    source = WeightSource("hf", manifest["location"], revision=manifest["revision"])
    repo = hf_repo_dir(source)
    commit = manifest["commit"]
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for f in manifest["files"]:
        src = folder / f["name"]
        etag = f.get("etag")
        # LFS files are stored under their sha256, git files under their blob id (as the hub's ETag says)
        if etag not in (f["sha256"], None) and etag != _git_blob_sha1(src):
            raise ModelError(f"{folder / MANIFEST}: etag of {f['name']} matches neither its sha256 nor its git blob id")
        etag = etag or (f["sha256"] if src.suffix in (".safetensors", ".bin", ".pth", ".pt") else _git_blob_sha1(src))
        blob = _copy_atomic(src, repo / "blobs" / etag)
        link = snapshot / f["name"]
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:  # no symlinks here (as huggingface_hub does then): a copy
            shutil.copyfile(blob, link)
    refs = repo / "refs"
    refs.mkdir(exist_ok=True)
    if manifest["revision"] != commit:
        (refs / manifest["revision"]).write_text(commit)
    return snapshot


def _copy_atomic(src: Path, dest: Path) -> Path:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.incomplete")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
