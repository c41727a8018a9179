"""benchmarks/gpu_bench.py and gpu_check.sh on the CPU: the same code the GPU run uses, tiny."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_bench", None)


def test_quick_cpu_run_fills_every_eager_cell_and_the_pipeline_row(bench, tmp_path, capsys):
    rc = bench.main(["--device", "cpu", "--quick", "--models", "mask2former-swin-t", "--no-compile",
                     "--budget", "120", "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    settings = [r["setting"] for r in rows]
    assert settings[:4] == ["fp32", "fp16", "fp16 + channels_last", "fp16 batch 4"]
    for r in rows[:4]:
        assert r["ms_per_frame"] > 0 and r["fps"] == pytest.approx(1000 / r["ms_per_frame"]), r
        assert r["peak_mib"] is None  # no GPU memory on the CPU
    pipe = rows[4]
    assert pipe["setting"].startswith("pipeline") and pipe["fps"] > 0
    assert pipe["e2e_ratio"] == pytest.approx(pipe["fps"] / pipe["extra"]["model_fps"])
    assert pipe["extra"]["summary"]["frames"] == 8
    table = (tmp_path / "table.md").read_text()
    assert table.count("| mask2former-swin-t |") == 5 and "ms/frame" in table and "e2e / model" in table
    assert "table written to" in capsys.readouterr().out


def test_an_exhausted_budget_skips_every_cell_with_a_note(bench, tmp_path):
    rc = bench.main(["--device", "cpu", "--quick", "--models", "detr-r50,streetnet", "--budget", "0",
                     "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(rows) == 2 * 4 + 1 + 2  # eager settings, StreetNet's pipeline, compile
    assert all(r["ms_per_frame"] is None and r["note"].startswith("skipped:") for r in rows)


def test_a_failing_cell_is_a_row_not_a_crash(bench, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no kernel image is available")

    monkeypatch.setattr(bench, "build_model", broken)
    rc = bench.main(["--device", "cpu", "--quick", "--models", "detr-r50", "--no-compile", "--budget", "60",
                     "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert rows and all(r["note"] == "failed: RuntimeError: no kernel image is available" for r in rows)


def test_unknown_model_is_an_argument_error(bench, tmp_path):
    with pytest.raises(SystemExit) as err:
        bench.main(["--device", "cpu", "--models", "yolo", "--out", str(tmp_path)])
    assert err.value.code == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-CUDA path")
def test_without_cuda_the_benchmark_says_so_and_exits_3(bench, tmp_path, capsys):
    assert bench.main(["--out", str(tmp_path)]) == bench.NO_CUDA == 3
    assert capsys.readouterr().out.startswith("no CUDA device")
    assert not (tmp_path / "table.md").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-CUDA path")
def test_gpu_check_script_ends_with_no_cuda_device(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_SITE": str(tmp_path / "site")}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--out", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("no CUDA device")


def test_gpu_check_script_rejects_unknown_arguments():
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--fast"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "unknown argument --fast" in proc.stderr
