"""Package data and the public API from any working directory, even one with a `vpanoptic/` folder in it.

A clone is a folder named ``vpanoptic``; seen from its parent, that folder is a namespace
package candidate that the import system finds before any import hook (the one setuptools
installs for editable installs of a flat layout). Each test runs a fresh interpreter with no
site processing (``-S -E``), the test environment's library folders, and the package made
importable the way an install does: through setuptools' own editable finder, or as a plain
path entry (what ``package-dir = {"" = "."}`` makes ``pip install -e`` write).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import vpanoptic

PKG_DIR = Path(vpanoptic.__file__).resolve().parent
ROOT = PKG_DIR.parent


def library_paths() -> list[str]:
    """This interpreter's path entries without the one that holds the package (and without '')."""
    return [p for p in sys.path if p and Path(p).is_dir() and not (Path(p) / "vpanoptic" / "__init__.py").exists()]


def run_from(cwd: Path, prelude: str, code: str) -> subprocess.CompletedProcess:
    script = f"import sys\nsys.path.extend({library_paths()!r})\n{prelude}\n{textwrap.dedent(code)}"
    return subprocess.run([sys.executable, "-S", "-E", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture()
def parent_of_clone(tmp_path: Path) -> Path:
    """A working directory holding a folder named `vpanoptic` (like a clone's top folder)."""
    (tmp_path / "vpanoptic" / "vpanoptic").mkdir(parents=True)
    (tmp_path / "vpanoptic" / "README.md").write_text("a clone's top folder\n")
    return tmp_path


def test_package_data_loads_when_the_package_name_is_a_namespace(parent_of_clone, tmp_path):
    editable = pytest.importorskip("setuptools.command.editable_wheel")
    finder = tmp_path / "hooks" / "editable_finder.py"
    finder.parent.mkdir()
    # setuptools' own finder, as `pip install -e` writes it for a flat layout.
    finder.write_text(editable._finder_template("vpanoptic", {"vpanoptic": str(PKG_DIR)}, {}))
    prelude = f"sys.path.append({str(finder.parent)!r})\nimport editable_finder\neditable_finder.install()"
    out = run_from(parent_of_clone, prelude, """
        import vpanoptic
        assert vpanoptic.__file__ is None, vpanoptic            # the folder shadows the package: a namespace
        from vpanoptic.datasets import COCO_PANOPTIC, VIPSEG    # package data (JSON)
        from vpanoptic.models.street.checkpoint import default_weights_path, load_checkpoint
        print(len(COCO_PANOPTIC.categories), len(VIPSEG.categories), default_weights_path().is_file(),
              load_checkpoint()["format"])
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["133", "124", "True", "vpanoptic-streetnet/1"]


def test_public_api_runs_from_the_parent_of_a_clone(parent_of_clone, make_video):
    rng = np.random.default_rng(0)
    clip = make_video([rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(3)])
    out_dir = parent_of_clone / "out"
    out = run_from(parent_of_clone, f"sys.path.append({str(ROOT)!r})", f"""
        from vpanoptic import load_config, run_video
        summary = run_video({str(clip)!r}, {str(out_dir)!r}, load_config(overrides=["output.save=jsonl"]))
        import vpanoptic
        print(vpanoptic.__file__, summary["frames"], summary["status"])
    """)
    assert out.returncode == 0, out.stderr
    module_file, frames, status = out.stdout.split()
    assert Path(module_file) == PKG_DIR / "__init__.py"
    assert (int(frames), status) == (3, "ok")
    assert len((out_dir / "segments.jsonl").read_text().splitlines()) == 3


def test_the_package_data_folder_is_a_regular_package():
    """`importlib.resources.files("vpanoptic.data")` must not depend on namespace lookup."""
    import vpanoptic.data

    assert vpanoptic.data.__file__ is not None
    assert {p.name for p in Path(vpanoptic.data.__file__).parent.glob("*.json")} >= {
        "coco_panoptic_categories.json", "vipseg_categories.json"}
