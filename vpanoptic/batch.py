"""`run_batch`: every video of a folder through `run_video`, in worker processes, resumably.

    INPUT_DIR/a.mp4  ──▶  OUTPUT_DIR/a/ (video.mp4, panoptic_kitti/, ..., summary.json)
    INPUT_DIR/b.mp4  ──▶  OUTPUT_DIR/b/
                          OUTPUT_DIR/batch_report.csv, batch_report.json

- **Nothing half-written**: a video is processed into ``OUTPUT_DIR/.NAME.partial-PID`` and
  renamed to ``OUTPUT_DIR/NAME`` only once complete (`vpanoptic.outputs.staged_output`). An
  output folder that exists is therefore complete; a rerun skips it (``force`` redoes it)
  and deletes partial folders left by an interrupted or killed run. OUTPUT_DIR must be
  empty, new or a batch's (``overwrite``: use it anyway, its other files left alone).
- **A full disk stops the batch**: a video that cannot be written (no space, file-size
  limit, read-only) ends the batch with an `OutputError`; the other files would fail too.
- **The batch goes on**: a damaged or unreadable file is reported (``failed`` with the
  reason, or ``damaged`` when it was processed but packets were lost) and the next file
  starts. A worker process that dies is replaced; its file is retried once.
- **Workers are processes** (``spawn``: no inherited threads or CUDA state), each with one
  model that serves all its videos (models built from the input, like the oracle, are
  built per video) and ``cores // workers - 1`` torch threads (at least 1), so the workers
  together never ask for more threads than the machine has. A worker exits by itself when
  the batch process is killed.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .config import RunConfig
from .errors import StageError, UserError
from .outputs import PARTIAL_MARK, OutputError, check_target, mark_folder, staged_output
from .runtime import MAX_DEFAULT_THREADS, RESERVED_CORES, available_cores  # no torch import

__all__ = ["VIDEO_EXTENSIONS", "find_videos", "report_line", "run_batch", "threads_per_worker"]

#: Files taken when no glob is given (lower-case suffixes).
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts",
    ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".h264", ".h265", ".hevc",
})  # fmt: skip
REPORT_CSV = "batch_report.csv"
REPORT_JSON = "batch_report.json"
SUMMARY_NAME = "summary.json"
#: How often a worker checks that the batch process is still alive (seconds).
PARENT_CHECK_S = 0.2
#: Times a file whose worker process died is tried again before it counts as failed.
CRASH_RETRIES = 1
#: Key of a row (not in the report) saying its output could not be written: the batch stops.
_WRITE_ERROR = "_write_error"
REPORT_FIELDS = ("video", "output", "status", "frames", "fps", "wall_time_s", "damaged_packets",
                 "dropped", "skipped", "error")


# --------------------------------------------------------------------------- planning
def find_videos(input_dir: Path, glob: str | None = None) -> list[Path]:
    """Files of `input_dir` (not recursive, hidden ones excluded) matching `glob`, else video suffixes."""
    if not input_dir.is_dir():
        raise UserError(f"input folder not found: {input_dir}")
    files = input_dir.glob(glob) if glob else input_dir.iterdir()
    found = [p for p in files if p.is_file() and not p.name.startswith(".")
             and (glob or p.suffix.lower() in VIDEO_EXTENSIONS)]
    return sorted(found)


def output_names(videos: list[Path]) -> list[str]:
    """One output folder name per video: its stem, or its full name when stems collide."""
    stems = [v.stem for v in videos]
    return [v.stem if stems.count(v.stem) == 1 else v.name.replace(".", "_") for v in videos]


def threads_per_worker(workers: int, requested: int = 0, cores: int | None = None) -> int:
    """torch threads for each of `workers` processes: `requested`, else cores // workers - 1 (>= 1).

    Each worker keeps one core for its decode and sink threads (`vpanoptic.runtime`'s rule).
    """
    if requested > 0:
        return requested
    if cores is None:
        cores = available_cores()
    return max(1, min(MAX_DEFAULT_THREADS, cores // max(1, workers) - RESERVED_CORES))


def clean_partials(output_dir: Path) -> list[Path]:
    """Delete partial folders left by an interrupted run; returns what was removed."""
    removed = []
    for p in output_dir.iterdir() if output_dir.is_dir() else ():
        if p.name.startswith(".") and PARTIAL_MARK in p.name and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


# --------------------------------------------------------------------------- worker side
_MODELS: dict = {}  # per worker process: one model, reused across videos


def _init_worker(threads: int, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the batch process decides what Ctrl-C does
    from .job import set_thread_defaults

    set_thread_defaults(threads)  # before the worker's model is built (run_video sets the same)

    def watch_parent() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(3)  # the batch process died: stop, leave only a partial folder

    threading.Thread(target=watch_parent, name="vpanoptic-parent-watch", daemon=True).start()


def _worker_model(cfg: RunConfig, video: str):
    """The worker's model for `video`: shared, unless the model is built from its input."""
    from .models.registry import build_model, get_entry

    if "input" in inspect.signature(get_entry(cfg.model.name).factory).parameters:
        return None  # per input (e.g. the oracle reads gt/ next to the video): run_video builds it
    key = (cfg.model.name, cfg.model.device, json.dumps(cfg.model.options, sort_keys=True, default=str))
    if key not in _MODELS:
        for previous in _MODELS.values():  # another model was asked for: release the old one
            getattr(previous, "close", lambda: None)()
        _MODELS.clear()
        _MODELS[key] = build_model(cfg.model.name, device=cfg.model.device, **cfg.model.options)
    return _MODELS[key]


def process_video(video: str, final_dir: str, cfg: RunConfig) -> dict:
    """Process one video into `final_dir` via a partial folder; returns its report row."""
    from .job import run_video

    final = Path(final_dir)
    row = {"video": video, "output": str(final), "status": "failed", "frames": 0, "fps": None,
           "wall_time_s": None, "damaged_packets": 0, "dropped": 0, "skipped": False, "error": ""}
    started = time.perf_counter()
    try:
        with staged_output(final, command="batch", overwrite=True) as tmp:  # the batch decided to (re)do it
            summary = run_video(video, tmp, cfg, model=_worker_model(cfg, video))
            if summary["frames"] == 0:
                raise UserError("no frame could be decoded")
        row.update(frames=summary["frames"], fps=summary["fps"], wall_time_s=summary["wall_time_s"],
                   damaged_packets=summary["damaged_packets"], dropped=summary["dropped"])
        row["status"] = "damaged" if summary["damaged_packets"] else "ok"
    except OutputError as e:
        row["error"], row[_WRITE_ERROR] = str(e), True
    except (UserError, StageError) as e:
        error = e.error if isinstance(e, StageError) and isinstance(e.error, UserError) else e
        row["error"] = str(error).splitlines()[0] if str(error) else type(error).__name__
    except Exception as e:  # noqa: BLE001 - reported, the batch goes on
        row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
    finally:
        if row["status"] == "failed":
            row["output"] = ""  # nothing was published
        if row["wall_time_s"] is None:
            row["wall_time_s"] = round(time.perf_counter() - started, 3)
    return row


# --------------------------------------------------------------------------- batch side
def _skipped_row(video: Path, final: Path) -> dict:
    try:
        summary = json.loads((final / SUMMARY_NAME).read_text())
    except (OSError, ValueError):
        summary = {}
    damaged = summary.get("damaged_packets", 0) or 0
    return {"video": str(video), "output": str(final), "status": "damaged" if damaged else "ok",
            "frames": summary.get("frames", 0), "fps": summary.get("fps"),
            "wall_time_s": summary.get("wall_time_s"), "damaged_packets": damaged,
            "dropped": summary.get("dropped", 0), "skipped": True, "error": ""}


def run_batch(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    cfg: RunConfig | None = None,
    *,
    workers: int = 1,
    glob: str | None = None,
    force: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    on_result: Callable[[dict], None] | None = None,
) -> dict:
    """Process every video of `input_dir` into its own folder of `output_dir`.

    Returns the report (also written as ``batch_report.json`` and ``.csv``): totals and one
    row per video (``status`` ok | damaged | failed; ``skipped`` when already complete).
    `overwrite`: accept a non-empty `output_dir` that is not a batch's (its files stay).
    Raises `UserError` for a missing folder, no matching file, bad `workers` or an
    `output_dir` in the way; `OutputError` (a UserError) when outputs cannot be written
    (unwritable folder, full disk: the batch stops); KeyboardInterrupt after stopping the
    workers (the report then lists what finished).
    """
    cfg = cfg or RunConfig()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if workers < 1:
        raise UserError(f"workers is {workers}; expected >= 1")
    videos = find_videos(input_dir, glob)
    if not videos:
        raise UserError(f"no videos in {input_dir}" + (f" match {glob!r}" if glob else
                        f" (extensions {', '.join(sorted(VIDEO_EXTENSIONS))}; use --glob)"))
    check_target(output_dir, overwrite=overwrite, replace=False)
    mark_folder(output_dir, "batch")  # now: a batch killed before its report is still recognised
    clean_partials(output_dir)
    finals = [output_dir / name for name in output_names(videos)]
    rows: dict[int, dict] = {}
    todo = []
    for i, (video, final) in enumerate(zip(videos, finals)):
        if final.is_dir() and (final / SUMMARY_NAME).is_file() and not force:
            rows[i] = _skipped_row(video, final)
        else:
            todo.append(i)
    workers = min(workers, max(1, len(todo)))
    threads = threads_per_worker(workers, cfg.model.threads)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, threads=threads))
    started = time.time()
    t0 = time.perf_counter()
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="video", desc="batch", dynamic_ncols=True)

    def finished(i: int, row: dict) -> None:
        write_error = row.pop(_WRITE_ERROR, False)
        rows[i] = row
        if bar is not None:
            bar.update(1)
            bar.write(report_line(row))
        if on_result is not None:
            on_result(row)
        if write_error:  # no space (or no right) to write: the next videos would fail the same way
            raise OutputError(row["error"])

    interrupted, failed = False, False
    try:
        _run_pool(todo, videos, finals, cfg, workers, threads, finished)
    except BaseException as exc:
        interrupted, failed = isinstance(exc, KeyboardInterrupt), True
        raise
    finally:
        if bar is not None:
            bar.close()
        clean_partials(output_dir)
        report = _report(input_dir, output_dir, videos, rows, workers, threads, started,
                         time.perf_counter() - t0, interrupted)
        try:
            _write_report(output_dir, report)
        except OSError as exc:
            for name in (REPORT_JSON, REPORT_CSV):
                (output_dir / f".{name}.tmp").unlink(missing_ok=True)
            if not failed:  # else the error in flight says more
                raise OutputError(f"cannot write the report to {output_dir}: {exc.strerror or exc}") from None
    return report


def _run_pool(todo, videos, finals, cfg, workers, threads, finished) -> None:
    """Run `todo` (indices) on `workers` processes; a file whose worker died is retried once."""
    attempts = {i: 0 for i in todo}
    pending = list(todo)
    context = multiprocessing.get_context("spawn")
    while pending:
        executor = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                       initializer=_init_worker, initargs=(threads, os.getpid()))
        crashed = []
        try:
            futures = {executor.submit(process_video, str(videos[i]), str(finals[i]), cfg): i for i in pending}
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    i = futures[future]
                    try:
                        finished(i, future.result())
                    except BrokenProcessPool:
                        crashed.append(i)
        except BaseException:
            _kill_workers(executor)
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        pending = []
        for i in crashed:
            attempts[i] += 1
            if attempts[i] > CRASH_RETRIES:
                finished(i, {"video": str(videos[i]), "output": "", "status": "failed", "frames": 0,
                             "fps": None, "wall_time_s": None, "damaged_packets": 0, "dropped": 0,
                             "skipped": False, "error": "the worker process died on this file"})
            else:
                pending.append(i)
        if len(pending) > 1:  # which file killed the pool is unknown: retry them one per pool
            workers = 1


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    for process in list(getattr(executor, "_processes", {}).values()):
        if process.is_alive():
            process.terminate()
    for process in list(getattr(executor, "_processes", {}).values()):
        process.join(5)


def _report(input_dir, output_dir, videos, rows, workers, threads, started, wall, interrupted) -> dict:
    items = [rows.get(i) or {"video": str(v), "output": "", "status": "not run", "frames": 0, "fps": None,
                             "wall_time_s": None, "damaged_packets": 0, "dropped": 0, "skipped": False,
                             "error": "interrupted before this file"}
             for i, v in enumerate(videos)]
    count = {s: sum(r["status"] == s for r in items) for s in ("ok", "damaged", "failed", "not run")}
    processed = [r for r in items if not r["skipped"] and r["status"] in ("ok", "damaged")]
    return {
        "input_dir": str(input_dir),
        "output_dir": str(output_dir),
        "videos": len(items),
        **count,
        "skipped": sum(r["skipped"] for r in items),
        "interrupted": interrupted,
        "workers": workers,
        "torch_threads_per_worker": threads,
        "started_unix": round(started, 3),
        "wall_time_s": round(wall, 3),
        "frames": sum(r["frames"] for r in processed),
        "videos_per_hour": round(len(processed) * 3600.0 / wall, 2) if wall > 0 and processed else None,
        "items": items,
    }


def _write_report(output_dir: Path, report: dict) -> None:
    from .job import write_json_atomic

    write_json_atomic(output_dir / REPORT_JSON, report)
    tmp = output_dir / f".{REPORT_CSV}.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=REPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(report["items"])
    os.replace(tmp, output_dir / REPORT_CSV)


def report_line(row: dict) -> str:
    """One line for a row of the report (what the command prints per video)."""
    name = Path(row["video"]).name
    if row["status"] == "failed":
        return f"FAILED  {name}: {row['error']}"
    return (f"{row['status']:<7} {name}: {row['frames']} frames, {row['fps']} FPS, "
            f"damaged packets {row['damaged_packets']}{' (already done)' if row['skipped'] else ''}")
