"""End to end: `vpanoptic run --model detr-r50-panoptic --weights FOLDER` writes the id maps
that DETR's rule gives on the network's own raw outputs, and every entry names its rule."""

import json

import numpy as np
import pytest
import torch
from model_helpers import tiny_hf_network
from PIL import Image
from test_detr_rule import detr_reference

from vpanoptic.cli import main
from vpanoptic.fusion import RULES
from vpanoptic.io.formats import decode_coco_ids, read_rgb_png
from vpanoptic.models.hub.preprocess import ResizeSpec, prepare_batch
from vpanoptic.models.hub.zoo import COCO_BY_ID, SPECS
from vpanoptic.models.registry import get_entry

SHORT_SIDE = 64


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("VPANOPTIC_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def image_folder(path, n=3, size=(56, 72)):
    """Lossless input frames: PNGs of smooth colour fields with a few rectangles."""
    path.mkdir()
    rng = np.random.default_rng(3)
    frames = []
    for i in range(n):
        y, x = np.mgrid[: size[0], : size[1]]
        img = np.stack([(x * 3 + i * 20) % 256, (y * 4) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)
        for _ in range(3):
            y0, x0 = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
            img[y0 : y0 + 10, x0 : x0 + 14] = rng.integers(0, 256, 3)
        Image.fromarray(img).save(path / f"{i:06d}.png")
        frames.append(img)
    return frames


def expected_detr_maps(folder, frames, spec):
    """The authors' rule (the plain loop of test_detr_rule) on the raw outputs of the saved network."""
    import transformers as tf

    net = tf.DetrForSegmentation.from_pretrained(str(folder), local_files_only=True).eval()
    resize = ResizeSpec(short_side=SHORT_SIDE, max_side=spec.resize.max_side, size_divisor=spec.resize.size_divisor)
    out = []
    for img in frames:
        x = torch.from_numpy(img.copy())[None].permute(0, 3, 1, 2)  # NHWC memory, as the pipeline uploads frames
        pixels, processed = prepare_batch(x, resize=resize, norm=spec.norm)
        with torch.inference_mode():
            raw = net(pixel_values=pixels)
        scores, labels = raw.logits[0].float().softmax(-1).max(-1)
        keep = (labels != raw.logits.shape[-1] - 1) & (scores > 0.0)  # score_threshold=0.0 below
        classes = labels[keep].tolist()
        positions, kept = detr_reference(raw.pred_masks[0][keep].float(), classes, [c <= 90 for c in classes],
                                         tuple(processed), img.shape[:2])
        cats = [COCO_BY_ID[classes[q]] for q in kept]
        id_map = np.zeros(img.shape[:2], np.int64)
        if kept:  # every pixel has a query; those of a class with no COCO category are void
            id_map = np.where(np.array(cats)[positions] >= 0, positions + 1, 0)
        out.append((id_map, {i + 1: c for i, c in enumerate(cats) if c >= 0}))
    return out


def test_cli_run_with_hub_layout_weights_gives_the_rules_id_maps(tmp_path, capsys):
    pytest.importorskip("transformers")
    spec = SPECS["detr-r50-panoptic"]
    folder = tmp_path / "detr-resnet-50-panoptic"
    tiny_hf_network(spec, seed=1).save_pretrained(folder)  # random weights, the hub's file layout
    frames = image_folder(tmp_path / "frames")
    out = tmp_path / "out"
    code = main([
        "run", str(tmp_path / "frames"), "-o", str(out), "--model", "detr-r50-panoptic", "--weights", str(folder),
        "--set", f"model.options.short_side={SHORT_SIDE}", "--set", "model.options.score_threshold=0.0",
        "--save", "coco", "--no-progress", "--device", "cpu",
    ])
    assert code == 0, capsys.readouterr().err
    annotations = {a["image_id"]: a for a in json.loads((out / "coco" / "panoptic.json").read_text())["annotations"]}
    expected = expected_detr_maps(folder, frames, spec)
    assert len(annotations) == len(frames)
    segments_seen = 0
    for index, (want_map, want_cats) in enumerate(expected):
        got_map = decode_coco_ids(read_rgb_png(out / "coco" / "panoptic" / f"{index:06d}.png")).astype(np.int64)
        got_cats = {s["id"]: s["category_id"] for s in annotations[index]["segments_info"]}
        # the same partition: a one-to-one relabelling of segment ids, void to void
        pairs = set(zip(got_map.ravel().tolist(), want_map.ravel().tolist()))
        assert len({g for g, _ in pairs}) == len(pairs) == len({w for _, w in pairs}), (
            f"frame {index}: partitions differ"
        )
        relabel = dict(pairs)
        assert relabel.get(0, 0) == 0
        assert {relabel[g]: c for g, c in got_cats.items()} == want_cats
        segments_seen += len(want_cats)
    assert segments_seen >= len(frames)  # the check compared real segments, not empty maps


def test_every_entry_names_its_rule_and_its_authors_thresholds():
    family_rule = {
        "detr": "detr",
        "mask2former": "mask2former",
        "maskrcnn": "panoptic-fpn",
        "maskrcnn-semantic": "panoptic-fpn",
    }
    for spec in SPECS.values():
        rule = RULES[spec.postprocess]
        assert spec.postprocess == family_rule[spec.family]
        assert dict(spec.thresholds) == dict(rule.thresholds)  # the authors' defaults, none overridden
        assert set(rule.threshold_sources) == set(rule.thresholds) and rule.source
        assert rule.source.split()[0] in {
            "facebookresearch/detr",
            "facebookresearch/Mask2Former",
            "facebookresearch/detectron2",
        }
        entry = get_entry(spec.name)
        assert "post-processing:" in entry.description  # shown by `vpanoptic models`
        options = set(entry.option_names())
        assert set(rule.thresholds) <= options
    assert RULES["detr"].thresholds == {"score_threshold": 0.85, "small_area_threshold": 4}
    assert RULES["mask2former"].thresholds == {"score_threshold": 0.8, "mask_threshold": 0.5, "overlap_threshold": 0.8}


def test_options_of_another_rule_are_refused():
    from vpanoptic.errors import ModelError
    from vpanoptic.models.registry import build_model

    with pytest.raises(ModelError, match="overlap_threshold"):
        build_model("detr-r50-panoptic", device="cpu", overlap_threshold=0.5)
    with pytest.raises(ModelError, match="small_area_threshold"):
        build_model("mask2former-swin-t-coco", device="cpu", small_area_threshold=3)
