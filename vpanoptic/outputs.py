"""Output folders that never mix two runs: written beside the target, swapped in when done.

    with staged_output("out", command="run", keep_partial_with="summary.json") as tmp:
        ...                      # write everything into tmp = out/../.out.partial-PID
    # out/ now holds exactly what was written into tmp, and nothing of an earlier run

- **A fresh folder per run**: the command writes into a hidden sibling of the target (same
  filesystem) that replaces the target only at the end, so a rerun with fewer frames leaves
  none of the earlier run's files beside the new summary.
- **Ended early**: a run that stopped (Ctrl-C, a failed stage) but wrote its self-describing
  file (`keep_partial_with`, e.g. ``summary.json`` with its ``status``) still replaces the
  target; otherwise (an input error before anything ran, a command without such a file)
  the temporary folder is removed and the target is left as it was.
- **Foreign folders are refused**: a non-empty target that vpanoptic did not write (no
  `MARKER`, no summary.json / meta.json / batch_report.json of ours) is a `UserError`
  unless ``overwrite``, which replaces it whole.
- **Write failures are one line**: an unwritable folder, a full disk or a file-size limit
  becomes an `OutputError` (a `UserError`: one line, exit 2) after the temporary folder is
  removed; the target is left as it was.

No torch here: `vpanoptic.batch` imports this in its planning process.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

__all__ = ["MARKER", "PARTIAL_MARK", "OutputError", "check_target", "is_vpanoptic_output", "mark_folder",
           "staged_file", "staged_output", "write_failure", "write_marker"]

#: Hidden file that marks a folder as written by vpanoptic (readers of the outputs skip dot-files).
MARKER = ".vpanoptic.json"
#: Temporary siblings are named ``.NAME.partial-PID`` (the old target, while swapped: ``.NAME.partial-old-PID``).
PARTIAL_MARK = ".partial-"
#: Errors that mean "the disk will not take it", wherever they were raised.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
#: Files by which outputs of versions without `MARKER` are recognised: name → key they hold.
_LEGACY = {"summary.json": "status", "batch_report.json": "items", "meta.json": "generator"}


class OutputError(UserError):
    """An output that cannot be written (unwritable folder, full disk, a foreign folder in the way)."""


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_vpanoptic_output(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds the output of a vpanoptic command (its `MARKER`, or an older run's summary)."""
    folder = Path(folder)
    if isinstance(_read_json(folder / MARKER), dict):
        return True
    for name, key in _LEGACY.items():
        data = _read_json(folder / name)
        if isinstance(data, dict) and key in data and (name != "meta.json"
                                                       or str(data["generator"]).startswith("vpanoptic")):
            return True
    return False


def write_marker(folder: Path, command: str) -> None:
    """Mark `folder` as the output of `command` (what `is_vpanoptic_output` looks for)."""
    from .version import __version__

    (folder / MARKER).write_text(json.dumps({"tool": "vpanoptic", "version": __version__, "command": command}) + "\n")


def mark_folder(folder: str | os.PathLike, command: str) -> None:
    """Make `folder` (and its parents) and mark it as `command`'s output, for commands that add to
    a folder instead of replacing it (`vpanoptic batch`). Raises `OutputError` if it cannot be written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_marker(folder, command)
    except OSError as exc:
        raise OutputError(f"cannot write to {os.fspath(folder)}: {_reason(exc, folder)}") from None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_target(target: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[str | os.PathLike] = (),
                 replace: bool = True) -> Path:
    """Validate the output folder `target` of a command; returns it absolute.

    Raises `OutputError` when it is a file, a non-empty folder that vpanoptic did not write
    (unless `overwrite`), or (when the command replaces it whole, `replace`) the current
    folder or one above it, or a folder holding one of the `inputs` that exist on disk.
    """
    shown, target = os.fspath(target), Path(os.path.abspath(target))
    if target.exists() and not target.is_dir():
        raise OutputError(f"output path exists and is not a folder: {shown}")
    if replace:
        real = Path(os.path.realpath(target))
        if _inside(Path.cwd().resolve(), real):
            raise OutputError(f"output folder {shown} is the current folder or holds it; choose a new folder")
        for item in inputs:
            path = Path(os.path.realpath(item))
            if path.exists() and _inside(path, real):
                raise OutputError(f"the input {os.fspath(item)} is inside the output folder {shown}; "
                                  "choose another folder")
    if target.is_dir() and not overwrite and any(target.iterdir()) and not is_vpanoptic_output(target):
        raise OutputError(f"{shown} is not empty and holds no vpanoptic output; choose another folder "
                          "or add --overwrite to replace it")
    return target


def _reason(exc: OSError, path: Path) -> str:
    """Why `path` (or a folder above it) could not be made: `exc`'s words, or the file in the way."""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        for above in path.parents:
            if above.exists():
                if not above.is_dir():
                    return f"{above} is a file, not a folder"
                break
    if exc.errno == errno.ENOENT:
        return f"folder {path.parent} does not exist"
    return exc.strerror or str(exc)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass


def _clean_stale(target: Path) -> None:
    """Remove temporary siblings of `target` left by a killed run (their process is gone)."""
    prefix = f".{target.name}{PARTIAL_MARK}"
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for p in siblings:
        pid = p.name[len(prefix):].rsplit("-", 1)[-1].split(".")[0]
        if p.name.startswith(prefix) and pid.isdigit() and not _pid_alive(int(pid)):
            _remove(p)


def write_failure(exc: BaseException, staging: Path) -> str | None:
    """The reason `exc` is a failure to write into `staging` (full disk, read-only, ...), else None.

    Looks through the chain of causes and `StageError.error`: an `OSError` with a write errno,
    or one that names a path in `staging` (cv2 says only "could not write PATH").
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError):
            if e.errno in WRITE_ERRNOS:
                return os.strerror(e.errno)
            text = " ".join(str(x) for x in (e.filename, e.filename2, e) if x)
            if str(staging) in text:
                return e.strerror or ("no space left on device" if _full(staging) else "a write failed")
        todo += [getattr(e, "error", None), e.__cause__, e.__context__]
    return None


def _full(path: Path) -> bool:
    try:
        st = os.statvfs(path if path.exists() else path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def _publish(tmp: Path, target: Path) -> None:
    """Swap the finished folder `tmp` in for `target` (whatever `target` held goes)."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}{PARTIAL_MARK}old-{os.getpid()}")
        _remove(old)
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        _remove(old)


@contextmanager
def staged_output(target: str | os.PathLike, *, command: str, overwrite: bool = False,
                  inputs: Iterable[str | os.PathLike] = (), keep_partial_with: str | None = None) -> Iterator[Path]:
    """Write a command's output folder through a temporary sibling; yields that folder.

    Args:
        target: the output folder (made, with its parents, if missing).
        command: written into the `MARKER` of the output.
        overwrite: replace a non-empty folder that vpanoptic did not write.
        inputs: paths the command reads; the target may not hold them.
        keep_partial_with: a file name; when the body raises (Ctrl-C, a failed stage) after
            writing this file into the folder, the folder still replaces the target.
    Raises `OutputError` (one line) for a target in the way, an unwritable folder or a full
    disk; the temporary folder is gone and the target untouched after any error that does
    not publish.
    """
    shown = os.fspath(target)
    target = check_target(target, overwrite=overwrite, inputs=inputs)
    tmp = target.with_name(f".{target.name}{PARTIAL_MARK}{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(target)
        _remove(tmp)
        tmp.mkdir()
        write_marker(tmp, command)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write to {shown}: {_reason(exc, tmp)}") from None
    try:
        yield tmp
    except BaseException as exc:
        reason = None if isinstance(exc, KeyboardInterrupt) else write_failure(exc, tmp)
        if reason is None and keep_partial_with is not None and (tmp / keep_partial_with).is_file():
            try:
                _publish(tmp, target)
            except OSError:
                pass  # the original error says more; the target is as it was
        _remove(tmp)
        if reason is not None:
            raise OutputError(f"cannot write to {shown}: {reason} (nothing was changed there)") from exc
        raise
    try:
        _publish(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write to {shown}: {exc.strerror or exc} (nothing was changed there)") from None


@contextmanager
def staged_file(target: str | os.PathLike, *, keep_partial: bool = False) -> Iterator[Path]:
    """Write one file through a temporary sibling (same suffix) made up front; yields its path.

    The temporary file exists (empty) from the start, so an unwritable folder fails before
    the work. It replaces `target` when the body ends (or is interrupted, with
    `keep_partial`); otherwise it is removed and `target` left as it was. Raises
    `OutputError` (one line) for a missing or unwritable folder or a full disk.
    """
    shown, target = os.fspath(target), Path(os.path.abspath(target))
    if target.is_dir():
        raise OutputError(f"output path is a folder, expected a file: {shown}")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}{PARTIAL_MARK}{os.getpid()}-", suffix=target.suffix,
                                    dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {_reason(exc, target)}") from None
    tmp = Path(name)
    try:
        yield tmp
    except BaseException as exc:
        reason = None if isinstance(exc, KeyboardInterrupt) else write_failure(exc, tmp)
        if keep_partial and isinstance(exc, KeyboardInterrupt) and tmp.is_file() and tmp.stat().st_size:
            try:
                os.replace(tmp, target)
            except OSError:
                pass
        _remove(tmp)
        if reason is not None:
            raise OutputError(f"cannot write {shown}: {reason} (nothing was changed there)") from exc
        raise
    try:
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
