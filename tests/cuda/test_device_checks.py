"""The checks the CUDA tests rely on, run on the CPU (so CI keeps them working)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from device_checks import (
    FAMILIES,
    FP32,
    Agreement,
    Tolerance,
    assert_same_panoptic,
    build_family,
    category_map,
    check_pipeline_outputs,
    check_valid,
    compare_panoptic,
    exact_fp32,
    family_frames,
    fp32_tolerance,
    host_copy_budget,
    memcpy_events,
    profile_copies,
    run_pipeline,
)

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.models.hub.preprocess import FastPath
from vpanoptic.types import Frame, PanopticFrame

ROOT = Path(__file__).resolve().parents[2]


def make_pf(id_map, categories, index=0) -> PanopticFrame:
    """A KITTI-STEP result over a hand-made id map (segments 1..N with `categories`)."""
    id_map = np.asarray(id_map, dtype=np.int32)
    frame = Frame(index, index, 0.0, 0.0, np.zeros((*id_map.shape, 3), np.uint8))
    n = len(categories)
    ids = np.arange(1, n + 1, dtype=np.int32)
    return PanopticFrame(frame, id_map, ids, np.asarray(categories, np.int32), KITTI_STEP)


# road = 0, sidewalk = 1 (stuff); car = 13 (thing)
A = [[1, 1, 2, 2],
     [1, 1, 2, 2],
     [3, 3, 3, 0],
     [3, 3, 3, 0]]


def test_category_map_marks_void_as_minus_one():
    expected = [[0, 0, 13, 13], [0, 0, 13, 13], [1, 1, 1, -1], [1, 1, 1, -1]]
    np.testing.assert_array_equal(category_map(make_pf(A, [0, 13, 1])), expected)


def test_identical_results_agree_fully():
    a = compare_panoptic(make_pf(A, [0, 13, 1]), make_pf(A, [0, 13, 1]))
    assert a == Agreement(1.0, 1.0, (3, 3)) and a.within(Tolerance(1.0, 1.0))


def test_renumbered_segments_still_agree():
    b = [[2, 2, 3, 3], [2, 2, 3, 3], [1, 1, 1, 0], [1, 1, 1, 0]]
    assert compare_panoptic(make_pf(A, [0, 13, 1]), make_pf(b, [1, 0, 13])) == Agreement(1.0, 1.0, (3, 3))


def test_a_split_instance_lowers_segment_agreement_only():
    # the car (segment 2, 4 px) split into two cars of 2 px: same classes, no IoU > 0.5 match
    b = [[1, 1, 2, 4], [1, 1, 2, 4], [3, 3, 3, 0], [3, 3, 3, 0]]
    ag = compare_panoptic(make_pf(A, [0, 13, 1]), make_pf(b, [0, 13, 1, 13]))
    assert ag.semantic == 1.0 and ag.segments == pytest.approx(12 / 16) and ag.counts == (3, 4)
    assert not ag.within(FP32)


def test_a_changed_class_lowers_both():
    ag = compare_panoptic(make_pf(A, [0, 13, 1]), make_pf(A, [0, 13, 2]))  # sidewalk → building
    assert ag.semantic == pytest.approx(10 / 16) and ag.segments == pytest.approx(10 / 16)


def test_void_against_a_segment_disagrees():
    b = [row[:] for row in A]
    b[2][3] = 3
    ag = compare_panoptic(make_pf(A, [0, 13, 1]), make_pf(b, [0, 13, 1]))
    assert ag.semantic == pytest.approx(15 / 16)
    assert ag.segments == pytest.approx(15 / 16)  # segment 3 still matches (IoU 6/7), one pixel does not


def test_different_sizes_are_an_error():
    with pytest.raises(ValueError, match="different sizes"):
        compare_panoptic(make_pf(A, [0, 13, 1]), make_pf(np.ones((4, 5)), [0]))


def test_assert_same_panoptic_reports_the_frame():
    with pytest.raises(AssertionError, match="per frame"):
        assert_same_panoptic([make_pf(A, [0, 13, 1])], [make_pf(A, [0, 13, 2])], FP32)


def test_agreement_is_pooled_over_the_pixels_of_all_frames():
    split = [[1, 1, 2, 4], [1, 1, 2, 4], [3, 3, 3, 0], [3, 3, 3, 0]]  # 12 of 16 pixels agree
    same = [make_pf(A, [0, 13, 1], index=i) for i in range(4)]
    other = same[:3] + [make_pf(split, [0, 13, 1, 13], index=3)]
    pooled = assert_same_panoptic(same, other, Tolerance(1.0, 0.9))
    assert pooled.segments == pytest.approx(60 / 64) and pooled.counts == (12, 13)
    with pytest.raises(AssertionError):
        assert_same_panoptic(same, other, Tolerance(1.0, 0.95))
    with pytest.raises(AssertionError):
        assert_same_panoptic(same, same[:2])


def test_memcpy_events_reads_kind_and_bytes():
    trace = {"traceEvents": [
        {"cat": "kernel", "name": "void elementwise_kernel"},
        {"cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "args": {"bytes": 96}},
        {"cat": "gpu_memcpy", "name": "Memcpy HtoD (Pinned -> Device)", "args": {"bytes": 18432}},
        {"cat": "gpu_memcpy", "name": "Memcpy DtoD (Device -> Device)"},
        {"cat": "cuda_runtime", "name": "cudaMemcpyAsync", "args": {"bytes": 5}},
    ]}
    copies = memcpy_events(trace)
    assert [(c.kind, c.bytes) for c in copies] == [("DtoH", 96), ("HtoD", 18432), ("DtoD", None)]
    assert "Pinned" in copies[1].name and all(c.within is None for c in copies)
    assert memcpy_events({}) == []


def test_memcpy_events_names_the_library_operator_a_copy_ran_in():
    """A copy launched inside torchvision's NMS (which reads its mask on the host) is marked."""
    def copy(correlation, ts, tid=1):
        return [
            {"cat": "cuda_runtime", "name": "cudaMemcpyAsync", "ts": ts, "dur": 2, "tid": tid,
             "args": {"correlation": correlation}},
            {"cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "ts": ts + 5, "tid": 7,
             "args": {"correlation": correlation, "bytes": 1000 + correlation}},
        ]

    trace = {"traceEvents": [
        {"cat": "cpu_op", "name": "torchvision::nms", "ts": 100, "dur": 50, "tid": 1},
        {"cat": "cpu_op", "name": "aten::copy_", "ts": 300, "dur": 50, "tid": 1},
        *copy(1, 120),           # inside the NMS
        *copy(2, 320),           # inside another operator
        *copy(3, 120, tid=2),    # same time, another thread
        {"cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "args": {"bytes": 8}},  # no launch
    ]}
    got = [(c.bytes, c.within) for c in memcpy_events(trace)]
    assert got == [(1001, "torchvision::nms"), (1002, None), (1003, None), (8, None)]
    assert [c.within for c in memcpy_events(trace, library_ops=())] == [None] * 4


def test_profile_copies_runs_on_the_cpu():
    result, copies = profile_copies(lambda: torch.ones(3).sum().item(), "cpu")
    assert result == 3.0 and copies == []


def test_host_copy_budget_is_a_sixteenth_of_the_id_map():
    assert host_copy_budget(make_pf(np.zeros((32, 64)), [])) == 32 * 64 * 4 // 16


def test_exact_fp32_restores_the_flags():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with exact_fp32():
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@pytest.mark.parametrize("family", list(FAMILIES))
def test_two_models_from_one_network_agree_fully(family, networks):
    """`build_family` copies the weights: the CPU-vs-CUDA test compares like with like."""
    fs = family_frames(family, 2)
    a = build_family(family, "cpu", net=networks[family]).predict(fs)
    b = build_family(family, "cpu", net=networks[family]).predict(fs)
    pooled = assert_same_panoptic(a, b, Tolerance(1.0, 1.0))
    assert pooled.counts[0] == pooled.counts[1] > 0


@pytest.mark.parametrize("family", list(FAMILIES))
def test_rounding_differences_stay_within_the_fp32_tolerance(family, networks):
    """channels_last changes the CPU's convolution kernels, hence the rounding: a stand-in for
    the CPU-vs-CUDA difference. Were this above the tolerance, the CUDA test would be flaky."""
    fs = family_frames(family, 3)  # the frames of the CPU-vs-CUDA test
    a = build_family(family, "cpu", net=networks[family]).predict(fs)
    b = build_family(family, "cpu", fast=FastPath(channels_last=True), net=networks[family]).predict(fs)
    check_valid(b, build_family(family, "cpu", net=networks[family]), family)
    assert_same_panoptic(a, b, fp32_tolerance(family))


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "streetnet"])
def test_bf16_autocast_gives_a_valid_result_on_the_cpu(family, networks):
    model = build_family(family, "cpu", fast=FastPath(autocast="bf16"), net=networks[family])
    check_valid(model.predict(family_frames(family, 2)), model, family)


def test_check_valid_rejects_a_result_on_the_wrong_device(networks):
    model = build_family("detr", "cpu", net=networks["detr"])
    pfs = model.predict(family_frames("detr", 1))
    pfs[0].id_map = pfs[0].id_map.numpy()  # as if copied to the host inside the model
    with pytest.raises(AssertionError):
        check_valid(pfs, model, "detr")


def test_streetnet_has_no_bf16_option():
    with pytest.raises(ValueError, match="bf16"):
        build_family("streetnet", "cpu", fast=FastPath(autocast="bf16"))


def test_pipeline_helper_runs_a_batched_network_model_on_the_cpu(tmp_path, networks):
    model = build_family("mask2former", "cpu", net=networks["mask2former"])
    summary = run_pipeline(model, tmp_path, frames=4, batch_size=2)
    check_pipeline_outputs(summary, tmp_path, 4)
    assert summary["device"] == "cpu"
    with pytest.raises(AssertionError):
        check_pipeline_outputs(summary, tmp_path, 5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip where no GPU is present")
def test_cuda_tests_are_skipped_without_a_gpu():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", str(ROOT / "tests" / "cuda")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert "skipped" in last and "passed" not in last and "failed" not in last, last
