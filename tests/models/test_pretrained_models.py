"""Pretrained families built from tiny random configurations: output contract, fast path, batching."""

import numpy as np
import pytest
import torch
from model_helpers import check_contract, frames, tiny_hf_network, tiny_panoptic_fpn

from vpanoptic.datasets import CITYSCAPES, COCO_PANOPTIC
from vpanoptic.errors import ModelError
from vpanoptic.models.hub.preprocess import (
    FastPath,
    FrameUploader,
    Normalization,
    ResizeSpec,
    prepare_batch,
)
from vpanoptic.models.hub.zoo import (
    COCO_BY_ID,
    COCO_CONTIGUOUS,
    COCO_THING_LABELS,
    SPECS,
)
from vpanoptic.models.registry import get_entry, list_models

HF_NAMES = ["detr-r50-panoptic", "mask2former-swin-t-coco", "mask2former-swin-t-cityscapes"]


def hf_model(name, **kwargs):
    pytest.importorskip("transformers")
    from vpanoptic.models.hub.hf import QueryPanopticModel

    spec = SPECS[name]
    kwargs.setdefault("score_threshold", 0.0)  # random weights: keep every query so fusion has work
    kwargs.setdefault("short_side", 64)
    return QueryPanopticModel(spec, tiny_hf_network(spec), device="cpu", **kwargs)


def maskrcnn_model(name, **kwargs):
    from vpanoptic.models.hub.maskrcnn import MaskRCNNPanopticModel

    spec = SPECS[name]
    kwargs.setdefault("score_threshold", 0.0)
    kwargs.setdefault("stuff_area_threshold", 1)
    return MaskRCNNPanopticModel(spec, tiny_panoptic_fpn(spec), device="cpu", **kwargs)


def test_every_entry_has_full_metadata():
    names = {e.name for e in list_models()}
    for spec in SPECS.values():
        assert spec.name in names
        entry = get_entry(spec.name)
        assert entry.spec is spec and entry.dataset == spec.meta.name and entry.pq == spec.pq
        assert spec.license and spec.pq_source and spec.description
        assert len(spec.norm.mean) == 3 and spec.resize.short_side > 0
        assert spec.meta.label_divisor > 0 and all(len(c.color) == 3 for c in spec.meta.categories)
        assert any(c >= 0 for c in spec.labels)
        if spec.weights is not None:
            assert entry.weights_cached is not None
    assert {SPECS[n].meta.name for n in SPECS} == {"coco-panoptic", "cityscapes"}
    # at least a small and a large Mask2Former per dataset
    m2f = [s for s in SPECS.values() if s.family == "mask2former"]
    for ds in ("coco-panoptic", "cityscapes"):
        assert {s.arch["backbone"] for s in m2f if s.meta.name == ds} >= {"swin-tiny", "swin-large"}
    assert get_entry("oracle").pq is None  # the older entry keeps working


def test_label_maps_use_the_datasets_own_ids():
    assert (
        COCO_CONTIGUOUS[0] == 1
        and COCO_CONTIGUOUS[79] == 90
        and COCO_CONTIGUOUS[80] == 92
        and COCO_CONTIGUOUS[-1] == 200
    )
    assert len(COCO_CONTIGUOUS) == 133
    assert COCO_BY_ID[1] == 1 and COCO_BY_ID[12] == -1 and COCO_BY_ID[200] == 200 and COCO_BY_ID[91] == -1
    assert sum(c >= 0 for c in COCO_BY_ID) == 133 and len(COCO_BY_ID) == 250
    assert COCO_THING_LABELS[0] == -1 and COCO_THING_LABELS[3] == 3 and sum(c >= 0 for c in COCO_THING_LABELS) == 80
    assert SPECS["mask2former-swin-t-cityscapes"].labels == tuple(range(19))


@pytest.mark.parametrize("name", HF_NAMES)
def test_query_models_keep_the_output_contract(name):
    model = hf_model(name)
    outs = model.predict(frames(2))
    assert len(outs) == 2 and [pf.frame.index for pf in outs] == [0, 1]
    meta = COCO_PANOPTIC if "coco" in name or "detr" in name else CITYSCAPES
    assert model.meta is meta
    for pf in outs:
        check_contract(pf, meta)
    assert sum(len(pf) for pf in outs) > 0  # random weights with no score threshold: segments exist
    if "cityscapes" in name:
        assert all(pf.category_ids.max(initial=0) <= 18 for pf in outs)


def test_unknown_class_indices_are_never_output():
    """DETR's 250 classes include indices that are no COCO category: a query predicting one is dropped."""
    model = hf_model("detr-r50-panoptic")
    with torch.no_grad():
        bias = model.net.detr.class_labels_classifier.bias
        bias.zero_()
        bias[12] = 50.0  # index 12 is not a COCO panoptic id
    pf = model.predict(frames(1))[0]
    assert len(pf) == 0 and int(pf.id_map.abs().sum()) == 0


@pytest.mark.parametrize("name, things_only", [("maskrcnn-v2-coco", True), ("maskrcnn-v2-semfpn-coco", False)])
def test_maskrcnn_models_keep_the_output_contract(name, things_only):
    model = maskrcnn_model(name)
    outs = model.predict(frames(2))
    for pf in outs:
        check_contract(pf, COCO_PANOPTIC, things_only=things_only)
    assert sum(int(pf.is_thing.sum()) for pf in outs) > 0
    if not things_only:
        assert sum(int((~pf.is_thing).sum()) for pf in outs) > 0  # the semantic head fills stuff


@pytest.mark.parametrize("fast", [FastPath(), FastPath(channels_last=True), FastPath(autocast="bf16")])
def test_fast_path_options_keep_the_contract(fast):
    model = hf_model("mask2former-swin-t-coco", fast=fast)
    for pf in model.predict(frames(2)):
        check_contract(pf, COCO_PANOPTIC)


def test_channels_last_gives_the_same_result():
    a = hf_model("detr-r50-panoptic").predict(frames(1))[0]
    b = hf_model("detr-r50-panoptic", fast=FastPath(channels_last=True)).predict(frames(1))[0]
    agree = (a.id_map == b.id_map).float().mean().item()
    assert agree > 0.99 and len(a) == len(b)


def test_batching_equals_one_frame_at_a_time():
    model = hf_model("mask2former-swin-t-cityscapes")
    fs = frames(3)
    batched = model.predict(fs)
    single = [model.predict([f])[0] for f in fs]
    for a, b in zip(batched, single):
        assert torch.equal(a.id_map, b.id_map)
        np.testing.assert_array_equal(a.category_ids, b.category_ids)


def test_mixed_frame_sizes_in_one_batch():
    model = hf_model("detr-r50-panoptic")
    fs = [frames(1, 48, 64)[0], frames(1, 40, 72, seed=1)[0], frames(1, 48, 64, seed=2)[0]]
    outs = model.predict(fs)
    assert [tuple(pf.id_map.shape) for pf in outs] == [(48, 64), (40, 72), (48, 64)]
    assert [pf.frame for pf in outs] == fs


def test_bad_options_are_model_errors():
    with pytest.raises(ModelError, match="autocast"):
        FastPath(autocast="int8")
    with pytest.raises(ModelError, match="score_threshold"):
        hf_model("detr-r50-panoptic", score_threshold=1.5)
    with pytest.raises(ModelError, match="small_area_threshold"):
        hf_model("detr-r50-panoptic", small_area_threshold=-1)
    with pytest.raises(ModelError, match=r"rule 'detr'\) has no option overlap_threshold"):
        hf_model("detr-r50-panoptic", overlap_threshold=0.5)  # Mask2Former's option, not DETR's
    with pytest.raises(ModelError, match="no option small_area_threshold"):
        hf_model("mask2former-swin-t-coco", small_area_threshold=4)


def test_uploader_reuses_its_buffer_and_prepare_normalizes_and_pads():
    up = FrameUploader(torch.device("cpu"))
    fs = frames(2, 30, 50)
    x = up.upload(fs)
    assert x.shape == (2, 3, 30, 50) and x.dtype == torch.uint8
    np.testing.assert_array_equal(x[1].permute(1, 2, 0).numpy(), fs[1].image)
    up.upload(frames(2, 30, 50, seed=3))
    assert up.reallocations == 1
    up.upload(frames(1, 30, 50))
    assert up.reallocations == 2
    norm = Normalization(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    img = torch.full((1, 3, 30, 50), 50, dtype=torch.uint8)
    px, size = prepare_batch(img, resize=ResizeSpec(short_side=60, max_side=90, size_divisor=32), norm=norm)
    assert size == (54, 90)  # 60/30 = 2 would make 100 wide > 90: limited by the long side
    assert px.shape == (1, 3, 64, 96)
    assert torch.allclose(px[0, :, 0, 0], torch.tensor([20.0, 7.5, 4.0]))
    assert float(px[0, :, 60:].abs().sum()) == 0  # zero padding
    cl, _ = prepare_batch(img, resize=ResizeSpec(short_side=0), norm=norm, channels_last=True)
    assert cl.is_contiguous(memory_format=torch.channels_last) and cl.shape == (1, 3, 32, 64)


def test_missing_transformers_names_the_extra(monkeypatch):
    import sys

    from vpanoptic.models.registry import build_model

    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    with pytest.raises(ModelError) as err:
        build_model("mask2former-swin-l-coco", device="cpu")
    assert "pip install 'vpanoptic[hf]'" in str(err.value)


def test_random_configs_have_the_published_architecture():
    pytest.importorskip("transformers")
    from vpanoptic.models.hub.hf import random_config

    detr = random_config(SPECS["detr-r101-panoptic"])
    assert detr.num_labels == 250 and list(detr.backbone_config.depths) == [3, 4, 23, 3]
    m2f = random_config(SPECS["mask2former-swin-l-cityscapes"])
    assert m2f.num_labels == 19 and m2f.backbone_config.embed_dim == 192 and m2f.num_queries == 200


def test_a_closed_model_says_so_when_used_again():
    model = maskrcnn_model("maskrcnn-v2-coco")
    assert len(model.predict(frames(1))) == 1
    model.close()
    with pytest.raises(ModelError, match="closed"):
        model.predict(frames(1))


def test_an_unknown_threshold_is_refused_before_the_network_is_set_up():
    with pytest.raises(ModelError, match="has no option small_area_threshold"):
        hf_model("mask2former-swin-t-coco", small_area_threshold=10)
