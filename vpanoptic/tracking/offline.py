"""Offline re-tracking: per-frame panoptic predictions → temporally consistent instance ids.

`vpanoptic track PRED_DIR -o OUT_DIR` reads KITTI-STEP PNGs whose instance ids are arbitrary
per frame (``PRED_DIR/<sequence>/<frame>.png``: R = semantic train id, G*256+B = instance id,
255 void; or one sequence directory of frames) and writes the same layout, same semantic
channel, with instance ids from a tracker. Thing pixels with instance 0 (crowd) stay 0.
Frame times are ``index / fps`` (KITTI: 10 fps). No images are read, so the tracker runs
without camera-motion compensation.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..datasets import KITTI_STEP
from ..errors import UserError
from ..io.formats import read_kitti_step, write_kitti_step
from ..types import DatasetMeta, Frame, PanopticFrame
from . import build_tracker

__all__ = ["find_sequences", "retrack_directory", "retrack_sequence"]

DEFAULT_FPS = 10.0  # KITTI-STEP frame rate


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _frames_of(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if not p.name.startswith(".")]
    others = [p for p in files if p.is_file() and p.suffix.lower() != ".png"]
    if others:
        raise UserError(f"{others[0]} is not a PNG; {folder} must hold only KITTI-STEP .png frames")
    return sorted((p for p in files if p.is_file()), key=_natural_key)


def find_sequences(pred_dir: str | Path) -> list[tuple[str, list[Path]]]:
    """The sequences of `pred_dir`: ``[(name, frame paths in natural order)]``.

    A folder of PNGs is one sequence named ""; otherwise every sub-folder is a sequence.
    Raises `UserError` for a missing or empty folder, a non-PNG file, or mixed layouts.
    """
    root = Path(pred_dir)
    if not root.is_dir():
        raise UserError(f"prediction folder not found: {root}")
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    subdirs = sorted((p for p in entries if p.is_dir()), key=_natural_key)
    files = [p for p in entries if p.is_file()]
    if files and subdirs:
        raise UserError(f"{root} mixes files and folders; expected PNG frames or one folder per sequence")
    if files:
        return [("", _frames_of(root))]
    sequences = [(d.name, _frames_of(d)) for d in subdirs]
    sequences = [(name, frames) for name, frames in sequences if frames]
    if not sequences:
        raise UserError(f"no PNG frames in {root} (expected {root}/<sequence>/<frame>.png or {root}/<frame>.png)")
    return sequences


def _read(path: Path, meta: DatasetMeta) -> tuple[np.ndarray, np.ndarray]:
    try:
        semantic, instance = read_kitti_step(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as a KITTI-STEP PNG: {exc}") from None
    present = np.unique(semantic)
    bad = present[(present != meta.void_id) & ~np.isin(present, [c.id for c in meta.categories])]
    if bad.size:
        raise UserError(f"{path}: semantic ids {bad[:8].tolist()} are not {meta.name} classes (or {meta.void_id} void)")
    return semantic, instance


def retrack_sequence(frames: list[Path], out_dir: Path, *, fps: float = DEFAULT_FPS, tracker: str = "hungarian",
                     meta: DatasetMeta = KITTI_STEP, **tracker_kwargs) -> int:
    """Re-track one sequence of KITTI-STEP PNGs into `out_dir` (same file names). Returns the
    number of distinct track ids written. Raises `UserError` for unreadable or mixed-size frames."""
    if not fps > 0:
        raise UserError(f"fps is {fps}; expected > 0")
    tracker_kwargs["camera_motion"] = False  # no images offline
    trk = build_tracker(tracker, **tracker_kwargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = None
    ids: set[int] = set()
    for index, path in enumerate(frames):
        semantic, instance = _read(path, meta)
        if size is None:
            size = semantic.shape
        elif semantic.shape != size:
            raise UserError(
                f"{path} is {semantic.shape[1]}x{semantic.shape[0]} but {frames[0].name} is {size[1]}x{size[0]}; "
                "all frames of a sequence must have one size"
            )
        image = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (*size, 3))  # no pixels offline
        pf = PanopticFrame.from_labels(Frame(index, index, index / fps, 0.0, image), semantic, instance, meta)
        pf.track_ids = np.full(len(pf), -1, np.int32)
        pf = trk.update(pf)
        sem_out, inst_out = pf.to_labels("track")
        if inst_out.max(initial=0) > 65535:
            raise UserError(f"{path}: more than 65535 track ids; split the sequence")
        ids.update(int(t) for t in pf.track_ids if t > 0)
        write_kitti_step(out_dir / path.name, sem_out, inst_out)
    return len(ids)


def retrack_directory(pred_dir: str | Path, out_dir: str | Path, *, fps: float = DEFAULT_FPS,
                      tracker: str = "hungarian", **tracker_kwargs) -> list[tuple[str, int, int]]:
    """Re-track every sequence of `pred_dir` into `out_dir` (same layout).

    Returns ``[(sequence name, frames, track ids)]``.
    """
    sequences = find_sequences(pred_dir)
    out_root = Path(out_dir)
    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"output path exists and is not a directory: {out_root}")
    if out_root.resolve() == Path(pred_dir).resolve():
        raise UserError("output folder is the prediction folder; choose another -o")
    done = []
    for name, frames in sequences:
        n_ids = retrack_sequence(
            frames, out_root / name if name else out_root, fps=fps, tracker=tracker, **tracker_kwargs
        )
        done.append((name, len(frames), n_ids))
    return done


def run_track_command(pred_dir: str, out_dir: str, *, fps: float, tracker: str | None, overrides: list[str]) -> int:
    """`vpanoptic track`: tracker options come from `TrackerConfig` (``--set key=value``)."""
    import dataclasses

    from ..config import load_config

    sets = [f"tracker.{kv}" for kv in overrides]
    if tracker is not None:
        sets.append(f"tracker.name={tracker}")
    cfg = load_config(None, sets).tracker
    params = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "name"}
    done = retrack_directory(pred_dir, out_dir, fps=fps, tracker=cfg.name, **params)
    for name, frames, ids in done:
        print(f"{name or Path(pred_dir).name}: {frames} frames, {ids} track ids")
    print(f"wrote {sum(f for _, f, _ in done)} frames of {len(done)} sequence(s) to {out_dir}")
    return 0
