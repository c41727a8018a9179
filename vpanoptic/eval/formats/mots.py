"""MOTS formats (KITTI-MOTS / MOTSChallenge, mots_tools conventions).

- **txt**: one line per object and frame, ``frame obj_id class_id height width rle`` with
  ``obj_id = class_id * 1000 + instance`` and ``rle`` the pycocotools *compressed* RLE string
  (column-major). Class 10 (obj_id 10000) marks ignore regions. One file per sequence:
  ``ROOT/<sequence>.txt`` (``instances_txt/0002.txt``) or a single ``.txt`` file.
- **png**: one 16-bit single-channel PNG per frame holding ``obj_id`` (0 = background, 10000 =
  ignore): ``ROOT/<sequence>/<frame:06d>.png`` (``instances/0002/000000.png``) or one folder of PNGs.

A txt sequence spans frames ``0 .. last frame listed``; frames without objects are empty.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .base import FormatError, FrameRef, LabelFrame, SequenceSet

__all__ = ["IGNORE_ID", "read_mots_png", "read_mots_txt", "write_mots_png", "write_mots_txt"]

IGNORE_ID = 10000  # class 10, the ignore region
CLASS_DIVISOR = 1000


def _parse_txt(path: Path) -> tuple[dict[int, list], tuple[int, int] | None]:
    frames: dict[int, list] = {}
    size = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 6:
            raise FormatError(f"{path}:{n}: expected 'frame id class_id height width rle'; got {len(parts)} fields")
        try:
            frame, obj, cls, h, w = (int(v) for v in parts[:5])
        except ValueError:
            raise FormatError(f"{path}:{n}: frame, id, class_id, height and width must be integers") from None
        if size is not None and (h, w) != size:
            raise FormatError(f"{path}:{n}: image size {w}x{h} differs from the earlier {size[1]}x{size[0]}")
        size = (h, w)
        if cls != obj // CLASS_DIVISOR:
            raise FormatError(f"{path}:{n}: id {obj} does not belong to class {cls} (id = class * 1000 + instance)")
        frames.setdefault(frame, []).append((obj, parts[5].strip()))
    return frames, size


def _decode(objects: list, size: tuple[int, int], where: str) -> np.ndarray:
    """Objects ``[(obj_id, rle string)]`` → ``(H, W) int64`` id map; overlapping masks raise."""
    h, w = size
    ids = np.zeros((h, w), np.int64)
    for obj, rle in objects:
        with warnings.catch_warnings():  # pycocotools' own NumPy 2 copy-keyword deprecation
            warnings.simplefilter("ignore", DeprecationWarning)
            m = mask_utils.decode({"size": [h, w], "counts": rle.encode("ascii")}).astype(bool)
        if (ids[m] != 0).any():
            raise FormatError(f"{where}: mask of object {obj} overlaps another object")
        ids[m] = obj
    return ids


def read_mots_txt(path: str | os.PathLike) -> SequenceSet:
    """MOTS txt sequences (a file, or a folder of ``<sequence>.txt``)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*.txt")) if path.is_dir() else []
    if not files:
        raise FormatError(f"mots: no MOTS txt file at {path}")
    out = SequenceSet(format="mots", root=path)
    for f in files:
        frames, size = _parse_txt(f)
        if size is None:
            out.sequences[f.stem] = []
            continue
        refs = []
        for index in range(max(frames) + 1):
            objects = frames.get(index, [])

            def load(objects=objects, index=index, f=f, size=size) -> LabelFrame:
                return LabelFrame(mots=_decode(objects, size, f"{f} frame {index}"))

            refs.append(FrameRef(f"{index:06d}", load, str(f)))
        out.sequences[f.stem] = refs
    return out


def _load_png(p: Path):
    def load() -> LabelFrame:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FormatError(f"{p}: not a readable PNG")
        if img.ndim != 2:
            raise FormatError(f"{p}: expected a single-channel 16-bit MOTS PNG; got shape {img.shape}")
        return LabelFrame(mots=img.astype(np.int64))

    return load


def read_mots_png(path: str | os.PathLike) -> SequenceSet:
    """MOTS PNG sequences (a folder of PNGs, or a folder of such folders)."""
    root = Path(path)
    if not root.is_dir():
        raise FormatError(f"mots: {root} is not a folder")
    out = SequenceSet(format="mots", root=root)
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        pngs = sorted(p for p in folder.glob("*.png") if not p.name.startswith("."))
        if pngs:
            out.sequences[folder.name] = [FrameRef(p.stem, _load_png(p), str(p)) for p in pngs]
        if folder is root and pngs:
            break
    if not out.sequences:
        raise FormatError(f"mots: no PNGs in {root} or its sub-folders")
    return out


def read_mots(path: str | os.PathLike) -> SequenceSet:
    """MOTS txt (file or folder of .txt) or MOTS PNG folders, whichever `path` holds."""
    path = Path(path)
    if path.is_file() or (path.is_dir() and any(path.glob("*.txt"))):
        return read_mots_txt(path)
    return read_mots_png(path)


def _check_ids(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"MOTS id map must be an (H, W) integer array; got {ids.shape} {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() > 65535):
        raise ValueError("MOTS ids must be in 0..65535")
    return ids.astype(np.int64)


def write_mots_txt(path: str | os.PathLike, frames: Iterable[np.ndarray], *, start: int = 0) -> Path:
    """Write id maps ``(H, W) int`` (``class * 1000 + instance``, 0 = background) as MOTS txt."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, ids in enumerate(frames, start=start):
        ids = _check_ids(ids)
        h, w = ids.shape
        for obj in np.unique(ids[ids > 0]).tolist():
            rle = mask_utils.encode(np.asfortranarray((ids == obj).astype(np.uint8)))
            lines.append(f"{index} {obj} {obj // CLASS_DIVISOR} {h} {w} {rle['counts'].decode('ascii')}")
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_mots_png(root: str | os.PathLike, sequences: Mapping[str, Iterable[np.ndarray]], *, start: int = 0) -> Path:
    """Write ``root/<sequence>/<index:06d>.png`` 16-bit id maps."""
    root = Path(root)
    for name, frames in sequences.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index, ids in enumerate(frames, start=start):
            if not cv2.imwrite(str(folder / f"{index:06d}.png"), _check_ids(ids).astype(np.uint16)):
                raise OSError(f"could not write {folder / f'{index:06d}.png'}")
    return root
