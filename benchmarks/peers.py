"""vpanoptic's tracker side by side with the trackers people use, on data it was never tuned on.

    nice -n 15 python benchmarks/peers.py [--quick] [--kinds synth,mot,net] [--split held-out|tune|both]
        [--out tracking-benchmark.md] [--set KEY=VALUE ...]

Needs the `bench` extra (``pip install 'vpanoptic[bench]'``); a peer whose library is
missing is left out with a note. Data (`heldout.py`): the synthetic world, real pedestrian
trajectories (MOTChallenge TUD ground truth shipped by `motmetrics`) and the bundled
network's own predictions, each split up front into a tuning part and a held-out part:

    synth   tune: world seeds 0, 1             held-out: seeds 7000, 7001
    mot     tune: TUD-Campus (25 and 5 fps)    held-out: TUD-Stadtmitte (25 and 5 fps)
    net     tune: seed 300                     held-out: seed 7100

Choices about vpanoptic's tracker are made on the tuning part only; the held-out part is
reported. Every tracker gets the same per-frame predictions; a box tracker sees one
detection per thing segment (its tight box, its score (1 for a kept ground-truth segment
... the oracle's scores: 0.5-1 for true, 0.05-0.5 for false positives), its class) and its
ids are painted back onto the segments by detection index (`BoxTrackerAdapter`; a segment
the tracker leaves out is a track of one frame). Library defaults, except where a default
cannot run offline (boxmot BoT-SORT: no ReID weights, so ``use_embeddings=False``; norfair
has no default distance: IoU distance, threshold 0.7 as in its box demos). The frame rate is
given where the API takes one (supervision, trackers, boxmot ByteTrack/BoT-SORT);
ultralytics, boxmot OC-SORT and norfair take none (their buffers count frames). Marked *:
DeepLab2's IoUTracker and Detectron2's VideoVisualizer matching, which do not install
cleanly, written again from their source (`peers_reimpl.py`, files and commits cited there);
they match masks, not boxes.

Scores: AQ and STQ of the project's `vpanoptic.eval.STQuality` (STEP), per scenario /
sequence (mean of the clips' pooled result) and their mean; ms/frame of each tracker's
``update()`` in the same run (box extraction from the masks and the id paint-back
included), torch threads 1. "oracle": every predicted thing segment takes the ground-truth
instance under most of its pixels (perfect association of these predictions).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import heldout
import numpy as np
import torch
import yaml
from tracking_quality import compact_ids, new_stq

from vpanoptic.tracking import Tracker, build_tracker
from vpanoptic.tracking.peers import BoxTrackerAdapter, ids_by_index

Factory = Callable[[float], Tracker]  # frame rate -> fresh tracker


def _ultralytics(kind: str) -> Factory:
    from ultralytics.engine.results import Boxes
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import ROOT, YAML, IterableSimpleNamespace

    cfg = IterableSimpleNamespace(**YAML.load(ROOT / "cfg" / "trackers" / f"{kind}.yaml"))
    cls = BYTETracker if kind == "bytetrack" else BOTSORT

    def factory(fps: float) -> Tracker:
        def make():
            tracker = cls(cfg)

            def step(boxes, scores, classes, image):
                shape = image.shape[:2] if image is not None else (1, 1)
                data = np.concatenate([boxes, scores[:, None], classes[:, None].astype(np.float32)], 1)
                out = tracker.update(Boxes(data, shape), None if image is None else image[..., ::-1])
                out = np.asarray(out).reshape(-1, 8)
                return ids_by_index(len(boxes), out[:, 7].astype(np.int64), out[:, 4].astype(np.int64))

            return step

        return BoxTrackerAdapter(make, f"ultralytics {kind}")

    return factory


def _boxmot(kind: str) -> Factory:
    import logging

    import boxmot

    logging.getLogger("boxmot").setLevel(logging.WARNING)  # it logs every tracker it builds

    def factory(fps: float) -> Tracker:
        def make():
            if kind == "bytetrack":
                tracker = boxmot.ByteTrack(frame_rate=round(fps))
            elif kind == "botsort":
                tracker = boxmot.BotSort(frame_rate=round(fps), use_embeddings=False)
            else:
                tracker = boxmot.OcSort()

            def step(boxes, scores, classes, image):
                dets = np.concatenate([boxes, scores[:, None], classes[:, None].astype(np.float32)], 1)
                img = np.zeros((1, 1, 3), np.uint8) if image is None else np.ascontiguousarray(image[..., ::-1])
                out = np.asarray(tracker.update(dets, img)).reshape(-1, 8)
                # boxmot counts ids from 0
                return ids_by_index(len(boxes), out[:, 7].astype(np.int64), out[:, 4].astype(np.int64) + 1)

            return step

        return BoxTrackerAdapter(make, f"boxmot {kind}")

    return factory


def _roboflow(kind: str) -> Factory:
    from vpanoptic.tracking.peers import build_peer_tracker

    build_peer_tracker(kind)  # fails here when the library is missing
    return lambda fps: build_peer_tracker(kind, fps=fps)


def _supervision() -> Factory:
    import supervision as sv

    def factory(fps: float) -> Tracker:
        def make():
            tracker = sv.ByteTrack(frame_rate=round(fps))

            def step(boxes, scores, classes, image):
                dets = sv.Detections(xyxy=boxes, confidence=scores, class_id=classes,
                                     data={"det_index": np.arange(len(boxes))})
                out = tracker.update_with_detections(dets)
                if not len(out):  # an empty result carries no data
                    return np.zeros(len(boxes), np.int64)
                return ids_by_index(len(boxes), out.data["det_index"], out.tracker_id)

            return step

        return BoxTrackerAdapter(make, "supervision ByteTrack")

    return factory


def _norfair() -> Factory:
    import norfair

    def factory(fps: float) -> Tracker:
        def make():
            tracker = norfair.Tracker(distance_function="iou", distance_threshold=0.7)

            def step(boxes, scores, classes, image):
                dets = [norfair.Detection(points=b.reshape(2, 2).astype(np.float64), scores=np.array([s, s]),
                                          label=int(c), data=k)
                        for k, (b, s, c) in enumerate(zip(boxes, scores, classes))]
                now = {id(d) for d in dets}
                out = np.zeros(len(boxes), np.int64)
                for obj in tracker.update(dets):
                    if obj.id is not None and obj.last_detection is not None and id(obj.last_detection) in now:
                        out[obj.last_detection.data] = obj.id
                return out

            return step

        return BoxTrackerAdapter(make, "norfair")

    return factory


def _reimpl(name: str) -> Factory:
    import peers_reimpl

    cls = getattr(peers_reimpl, name)
    return lambda fps: cls()  # both count frames, no frame rate


PEERS: dict[str, Callable[[], Factory]] = {
    "ultralytics ByteTrack": lambda: _ultralytics("bytetrack"),
    "ultralytics BoT-SORT": lambda: _ultralytics("botsort"),
    "boxmot ByteTrack": lambda: _boxmot("bytetrack"),
    "boxmot BoT-SORT": lambda: _boxmot("botsort"),
    "boxmot OC-SORT": lambda: _boxmot("ocsort"),
    "trackers SORT": lambda: _roboflow("sort"),
    "trackers ByteTrack": lambda: _roboflow("bytetrack"),
    "trackers OC-SORT": lambda: _roboflow("ocsort"),
    "supervision ByteTrack": _supervision,
    "norfair": _norfair,
    "DeepLab2 IoUTracker*": lambda: _reimpl("DeepLab2IoU"),
    "Detectron2 VideoVisualizer*": lambda: _reimpl("Detectron2Video"),
}


def available_peers(names: list[str] | None = None) -> tuple[dict[str, Factory], dict[str, str]]:
    """Factories of the peers whose libraries import; and why each other one is left out."""
    ok, missing = {}, {}
    for name, load in PEERS.items():
        if names and name not in names:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ok[name] = load()
        except Exception as e:  # noqa: BLE001 - any import failure leaves the peer out, with its reason
            missing[name] = f"{type(e).__name__}: {e}"
    return ok, missing


def run(seqs: list[heldout.Sequence], trackers: dict[str, Factory]):
    """AQ / STQ per (kind, split, group) and tracker, and ms per `update()` per tracker."""
    results: dict[tuple, dict[str, dict]] = {}
    seconds = {name: 0.0 for name in trackers}
    frames = 0
    groups: dict[tuple, list[heldout.Sequence]] = {}
    for s in seqs:
        groups.setdefault((s.kind, s.split, s.group), []).append(s)
    for key, members in groups.items():
        stq = {name: new_stq() for name in ["oracle", *trackers]}
        for seq_id, s in enumerate(members):
            book, fresh = {}, [0]
            for gt, pf in zip(s.gts, s.oracle):
                stq["oracle"].update(gt, compact_ids(pf, book, fresh), sequence_id=seq_id)
            frames += len(s.preds)
            for name, make in trackers.items():
                tracker = make(s.fps)
                book, fresh = {}, [0]
                for gt, pf in zip(s.gts, s.fresh_preds()):
                    t0 = time.perf_counter()
                    out = tracker.update(pf)
                    seconds[name] += time.perf_counter() - t0
                    stq[name].update(gt, compact_ids(out, book, fresh), sequence_id=seq_id)
                tracker.close()
        results[key] = {name: {k: float(v) for k, v in acc.result().items() if k in ("AQ", "STQ")}
                        for name, acc in stq.items()}
        row = results[key]
        print(f"{key}: " + ", ".join(f"{n} {r['AQ']:.3f}" for n, r in row.items()), file=sys.stderr, flush=True)
    ms = {name: 1000 * s / max(frames, 1) for name, s in seconds.items()}
    return results, ms


def table(results, ms, names: list[str], ours: str = "vpanoptic", own: frozenset = frozenset()) -> list[str]:
    """Markdown lines: AQ per group (the best tracker in bold), means per kind and split,
    ms/frame; the ratio columns compare `ours` with the best column not in `own` (vpanoptic's
    other choices and variants are not peers)."""
    cols = ["oracle", *names]
    peers = [n for n in names if n != ours and n not in own]
    head = "| data | split | scenario / sequence | " + " | ".join(cols)
    lines = [head + f" | {ours} / best peer | {ours} / oracle |",
             "|" + "---|" * (len(cols) + 5)]

    def row(kind, split, group, vals):
        best = max((vals[n] for n in peers), default=float("nan"))
        top = max(vals[n] for n in names)
        cells = [f"**{vals[n]:.3f}**" if n != "oracle" and vals[n] >= top - 1e-9 else f"{vals[n]:.3f}" for n in cols]
        ratio_peer = vals[ours] / best if best > 0 else float("nan")
        ratio_or = vals[ours] / vals["oracle"] if vals["oracle"] > 0 else float("nan")
        lines.append(f"| {kind} | {split} | {group} | " + " | ".join(cells) + f" | {ratio_peer:.3f} | {ratio_or:.3f} |")

    kinds: dict[tuple, list] = {}
    for (kind, split, group), r in results.items():
        row(kind, split, group, {n: r[n]["AQ"] for n in cols})
        kinds.setdefault((kind, split), []).append(r)
    for (kind, split), rs in kinds.items():
        row(kind, split, "**mean**", {n: float(np.mean([r[n]["AQ"] for r in rs])) for n in cols})
    lines.append("| ms/frame | | | – | " + " | ".join(f"{ms[n]:.2f}" for n in names) + " | | |")
    return lines


def _variant(kwargs: dict, fps: float) -> Tracker:
    kwargs = dict(kwargs)
    return build_tracker(kwargs.pop("tracker", "hungarian"), **kwargs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="held-out only, one clip per scenario, short clips")
    parser.add_argument("--kinds", default="synth,mot,net", help="comma-separated: synth, mot, net")
    parser.add_argument("--split", default="held-out", choices=["held-out", "tune", "both"])
    parser.add_argument("--peers", default=None, help="comma-separated peer names (default: all installed)")
    parser.add_argument("--no-peers", action="store_true", help="vpanoptic and the oracle only")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="vpanoptic tracker keyword for this run (repeatable)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                        help="an extra vpanoptic column with these keywords (ablations; tracker=kalman picks "
                             "the candidate; repeatable)")
    parser.add_argument("--out", default=None, help="also write the table as Markdown to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    overrides = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.set)}
    trackers: dict[str, Factory] = {"vpanoptic": lambda fps: build_tracker("hungarian", **overrides)}
    for spec in args.variant:
        label, _, kv = spec.partition(":")
        kw = {**overrides, **{k: yaml.safe_load(v) for k, v in (p.split("=", 1) for p in kv.split(",") if p)}}
        trackers[label] = functools.partial(_variant, kw)
    trackers["vpanoptic kalman"] = lambda fps: build_tracker("kalman")
    trackers["greedy"] = lambda fps: build_tracker("greedy")
    missing: dict[str, str] = {}
    if not args.no_peers:
        peers, missing = available_peers(args.peers.split(",") if args.peers else None)
        trackers.update(peers)
    splits = ["tune", "held-out"] if args.split == "both" else [args.split]
    scale = 0.5 if args.quick else 1.0
    started = time.time()
    seqs: list[heldout.Sequence] = []
    for split in splits:
        for kind in args.kinds.split(","):
            if kind == "synth":
                seeds = heldout.SPLITS["synth"][split][:1] if args.quick else None
                seqs += heldout.synth_sequences(split, scale, seeds=seeds)
            elif kind == "mot":
                seqs += heldout.mot_sequences(split, max_frames=80 if args.quick else None)
            elif kind == "net":
                seqs += heldout.net_sequences(split, scale)
            else:
                parser.error(f"unknown kind {kind!r}")
    print(f"data ready in {time.time() - started:.0f} s: {len(seqs)} clips, "
          f"{sum(len(s.preds) for s in seqs)} frames", file=sys.stderr, flush=True)
    results, ms = run(seqs, trackers)
    names = list(trackers)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = [f"AQ (STEP) per scenario / sequence; {stamp}; {platform.machine()} CPU, "
            f"{torch.get_num_threads()} torch thread; command: python benchmarks/peers.py "
            + " ".join(argv if argv is not None else sys.argv[1:]), ""]
    own = frozenset([*(spec.partition(":")[0] for spec in args.variant), "vpanoptic kalman"])
    lines = head + table(results, ms, names, own=own)
    if missing:
        lines += ["", "Left out (library missing or failing to import): "
                  + "; ".join(f"{n} ({why})" for n, why in missing.items())]
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"total {time.time() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
