"""Every model family and the whole pipeline on a CUDA device (``pytest -m cuda``).

Skipped where no CUDA device is present (tests/conftest.py). The comparison code lives in
`device_checks` and runs on the CPU in `test_device_checks.py` too.
"""

from __future__ import annotations

import pytest
from device_checks import (
    FAMILIES,
    Tolerance,
    assert_same_panoptic,
    build_family,
    check_pipeline_outputs,
    check_valid,
    exact_fp32,
    family_frames,
    fp32_tolerance,
    host_copy_budget,
    profile_copies,
    run_pipeline,
)

from vpanoptic.models.hub.preprocess import FastPath

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(300)]

# StreetNet has trained weights: fp16 may move edge pixels, not the result.
FP16_STREETNET = Tolerance(semantic=0.97, segments=0.9)
NETWORK_FAMILIES = [f for f in FAMILIES if f != "streetnet"]  # the ones using the pinned uploader


@pytest.mark.parametrize("family", list(FAMILIES))
def test_cuda_gives_the_cpu_result_in_fp32(family, networks):
    fs = family_frames(family, 3)
    with exact_fp32():
        cpu = build_family(family, "cpu", net=networks[family])
        gpu = build_family(family, "cuda", net=networks[family])
        expected = cpu.predict(fs)
        got = gpu.predict(fs)
    check_valid(got, gpu, family)
    assert_same_panoptic(expected, got, fp32_tolerance(family))


@pytest.mark.parametrize("mode", ["fp16", "bf16"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_autocast_gives_a_valid_result(family, mode, networks):
    if family == "streetnet" and mode == "bf16":
        pytest.skip("StreetNet's amp option is fp16 only")
    model = build_family(family, "cuda", fast=FastPath(autocast=mode), net=networks[family])
    check_valid(model.predict(family_frames(family, 2)), model, family)


@pytest.mark.parametrize("family", NETWORK_FAMILIES)
def test_fp16_channels_last_and_batching_give_a_valid_result(family, networks):
    model = build_family(family, "cuda", fast=FastPath(autocast="fp16", channels_last=True), net=networks[family])
    outs = model.predict(family_frames(family, 4))
    assert [pf.frame.index for pf in outs] == [0, 1, 2, 3]
    check_valid(outs, model, family)


def test_streetnet_fp16_stays_close_to_fp32():
    fs = family_frames("streetnet", 3)
    with exact_fp32():
        fp32 = build_family("streetnet", "cuda").predict(fs)
    fp16 = build_family("streetnet", "cuda", fast=FastPath(autocast="fp16")).predict(fs)
    assert_same_panoptic(fp32, fp16, FP16_STREETNET)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_no_large_host_copy_inside_the_model(family, networks):
    """The id map and the masks stay on the device; only the segment table and counts cross."""
    model = build_family(family, "cuda", net=networks[family])
    fs = family_frames(family, 1)
    model.predict(fs)  # warm-up: lazy initialisation stays out of the profile
    outs, copies = profile_copies(lambda: model.predict(fs), "cuda")
    pf = outs[0]
    assert pf.id_map.device.type == "cuda"
    dtoh = [c for c in copies if c.kind == "DtoH" and c.within is None]  # not torchvision's NMS
    assert dtoh, "the profiler recorded no device → host copy, yet the segment table is one: the check is blind"
    assert all(c.bytes is not None for c in dtoh), dtoh
    budget = host_copy_budget(pf)
    largest = max(c.bytes for c in dtoh)
    assert largest <= budget, f"a {largest}-byte device → host copy inside predict (budget {budget}): {dtoh}"
    assert sum(c.bytes for c in dtoh) <= 2 * budget, dtoh


@pytest.mark.parametrize("family", NETWORK_FAMILIES)
def test_frames_are_uploaded_from_pinned_memory(family, networks):
    model = build_family(family, "cuda", net=networks[family])
    fs = family_frames(family, 2)
    model.predict(fs)
    _, copies = profile_copies(lambda: model.predict(fs), "cuda")
    frame_bytes = fs[0].image.nbytes
    uploads = [c for c in copies if c.kind == "HtoD" and (c.bytes or 0) >= frame_bytes]
    assert uploads, copies
    assert all("Pinned" in c.name for c in uploads), uploads
    assert model.uploader._buffer is not None and model.uploader._buffer.is_pinned()


def test_pipeline_runs_end_to_end_on_cuda(tmp_path):
    model = build_family("streetnet", "cuda", fast=FastPath(autocast="fp16"))
    summary = run_pipeline(model, tmp_path, frames=6)
    check_pipeline_outputs(summary, tmp_path, 6)
    assert summary["device"].startswith("cuda")


def test_batched_pipeline_with_a_network_model_on_cuda(tmp_path, networks):
    model = build_family("mask2former", "cuda", fast=FastPath(autocast="fp16"), net=networks["mask2former"])
    summary = run_pipeline(model, tmp_path, frames=6, batch_size=4)
    check_pipeline_outputs(summary, tmp_path, 6)
    assert summary["device"].startswith("cuda")
