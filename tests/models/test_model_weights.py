"""Weights: offline errors, local --weights files in the published layouts, corrupted files, the cache."""

import hashlib
import os
import shutil

import pytest
import torch
from model_helpers import check_contract, frames, tiny_hf_network

from vpanoptic.cli import main
from vpanoptic.datasets import CITYSCAPES, COCO_PANOPTIC
from vpanoptic.errors import ModelError
from vpanoptic.models.hub.maskrcnn import build_detector
from vpanoptic.models.hub.weight_cache import load_state_dict
from vpanoptic.models.hub.zoo import SPECS
from vpanoptic.models.registry import build_model, get_entry

MRCNN_FILE = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"


@pytest.fixture(autouse=True)
def offline_empty_cache(tmp_path, monkeypatch):
    """No network, and caches that start empty: nothing here may download."""
    monkeypatch.setenv("VPANOPTIC_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vpanoptic.synth import write_sequence

    out = tmp_path_factory.mktemp("clip") / "seq"
    write_sequence(out, frames=3, size=(96, 64), seed=1)
    return out / "video.mp4"


@pytest.fixture(scope="module")
def maskrcnn_file(tmp_path_factory):
    """Random weights of the full maskrcnn_resnet50_fpn_v2 in torchvision's published state-dict layout."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "mrcnn.pth"
    torch.save(build_detector(91).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def detr_folder(tmp_path_factory):
    pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("detr") / "detr-resnet-50-panoptic"
    tiny_hf_network(SPECS["detr-r50-panoptic"]).save_pretrained(path)
    return path


def test_offline_without_cache_names_the_file_the_folder_and_the_fetch_command(tmp_path):
    with pytest.raises(ModelError) as err:
        build_model("maskrcnn-v2-coco", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg
    assert MRCNN_FILE in msg and str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert "https://download.pytorch.org/models/" + MRCNN_FILE in msg and "--weights" in msg


def test_offline_without_cache_hf(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ModelError) as err:
        build_model("mask2former-swin-t-cityscapes", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg
    assert "facebook/mask2former-swin-tiny-cityscapes-panoptic/model.safetensors" in msg
    assert str(tmp_path / "hf" / "hub") in msg
    assert "vpanoptic models fetch mask2former-swin-t-cityscapes --to DIR" in msg
    assert "vpanoptic models import DIR" in msg and "--weights" in msg and "copy it into" not in msg


def test_cli_offline_error_is_one_line_and_exit_2(clip, tmp_path, capsys):
    code = main(["run", str(clip), "-o", str(tmp_path / "out"), "--model", "maskrcnn-v2-coco", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and MRCNN_FILE in err


def test_semantic_combination_requires_weights():
    with pytest.raises(ModelError, match="no published weights"):
        build_model("maskrcnn-v2-semfpn-coco", device="cpu")


def test_local_torchvision_file_runs_through_the_pipeline(clip, maskrcnn_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(clip), "-o", str(out), "--model", "maskrcnn-v2-coco", "--weights", str(maskrcnn_file),
                     "--set", "model.options.short_side=64", "--set", "model.options.max_side=96", "--set",
                     "model.options.score_threshold=0.0", "--set", "model.options.max_instances=5", "--save",
                     "png,jsonl", "--no-progress", "--batch-size", "2"])
    assert code == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file() and any(out.rglob("*.png")) and any(out.rglob("*.jsonl"))


@pytest.mark.parametrize(
    "content, match",
    [
        (b"not a checkpoint at all", "cannot be read"),
        (b"PK\x03\x04truncated zip", "cannot be read"),
    ],
)
def test_corrupted_files_are_refused(tmp_path, content, match):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=match):
        build_model("maskrcnn-v2-coco", device="cpu", weights=str(path))


class Gadget:  # not a tensor: weights_only loading must refuse to build it
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickled_code_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"detector.x": Gadget()}, path)
    with pytest.raises(ModelError, match="cannot be read"):
        load_state_dict(path)


def test_published_file_name_with_wrong_checksum_is_refused(tmp_path):
    path = tmp_path / MRCNN_FILE
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ModelError, match="checksum"):
        build_model("maskrcnn-v2-coco", device="cpu", weights=str(path))


def test_corrupted_cached_file_is_refused(tmp_path):
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / MRCNN_FILE).write_bytes(b"\0" * 100)
    assert get_entry("maskrcnn-v2-coco").weights_cached()
    with pytest.raises(ModelError, match="checksum"):
        build_model("maskrcnn-v2-coco", device="cpu")


def test_state_dict_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"detector.backbone.body.conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="does not fit"):
        build_model("maskrcnn-v2-coco", device="cpu", weights=str(path))


def test_local_hf_folder_loads_and_runs_through_the_pipeline(clip, detr_folder, tmp_path, capsys):
    model = build_model("detr-r50-panoptic", device="cpu", weights=str(detr_folder), score_threshold=0.0, short_side=64)
    for pf in model.predict(frames(2)):
        check_contract(pf, COCO_PANOPTIC)
    # a weights file inside the folder works too, through the CLI and the whole pipeline
    out = tmp_path / "out"
    code = main(["run", str(clip), "-o", str(out), "--model", "detr-r50-panoptic", "--weights",
                     str(detr_folder / "model.safetensors"), "--set", "model.options.short_side=64", "--set",
                     "model.options.score_threshold=0.0", "--save", "coco", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file()


def test_corrupted_hf_weights_are_refused(detr_folder, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(detr_folder, bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cannot be loaded"):
        build_model("detr-r50-panoptic", device="cpu", weights=str(bad))
    with pytest.raises(ModelError, match="Hugging Face layout"):
        build_model("detr-r50-panoptic", device="cpu", weights=str(tmp_path / "nowhere"))


def test_hf_weights_with_another_class_count_are_refused(tmp_path):
    pytest.importorskip("transformers")
    folder = tmp_path / "m2f-coco"
    tiny_hf_network(SPECS["mask2former-swin-t-coco"]).save_pretrained(folder)
    with pytest.raises(ModelError, match="expects 19"):
        build_model("mask2former-swin-t-cityscapes", device="cpu", weights=str(folder))


def _fill_hf_cache(tmp_path, spec, folder, *, good_hash=True):
    """Lay out `folder` as huggingface_hub's cache does: refs/main → snapshots/REV/* → blobs/SHA256."""
    repo = tmp_path / "hf" / "hub" / ("models--" + spec.weights.location.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snap = repo / "snapshots" / "0123abcd"
    (repo / "blobs").mkdir()
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        data = (folder / name).read_bytes()
        digest = hashlib.sha256(data).hexdigest() if good_hash else "0" * 64
        (repo / "blobs" / digest).write_bytes(data)
        (snap / name).symlink_to(repo / "blobs" / digest)


def test_cached_hub_snapshot_is_found_listed_and_verified(detr_folder, tmp_path, capsys):
    spec = SPECS["detr-r50-panoptic"]
    assert not spec.weights_cached()
    _fill_hf_cache(tmp_path, spec, detr_folder)
    assert spec.weights_cached()
    model = build_model("detr-r50-panoptic", device="cpu", score_threshold=0.0, short_side=64)
    check_contract(model.predict(frames(1))[0], COCO_PANOPTIC)
    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "43.4" in lines["detr-r50-panoptic"] and "coco-panoptic" in lines["detr-r50-panoptic"]
    assert " cached " in lines["detr-r50-panoptic"] and "not cached" in lines["detr-r101-panoptic"]
    assert "cityscapes" in lines["mask2former-swin-l-cityscapes"] and "66.6" in lines["mask2former-swin-l-cityscapes"]
    assert CITYSCAPES.name == "cityscapes"


def test_cached_blob_that_fails_its_sha256_is_refused(detr_folder, tmp_path):
    _fill_hf_cache(tmp_path, SPECS["detr-r101-panoptic"], detr_folder, good_hash=False)
    with pytest.raises(ModelError, match="checksum"):
        build_model("detr-r101-panoptic", device="cpu")


def test_hub_snapshot_with_the_alternate_weights_name_is_found(tmp_path):
    from vpanoptic.models.hub.weight_cache import fetch_hf_snapshot

    spec = SPECS["mask2former-swin-l-coco"]
    snap = tmp_path / "hf" / "hub" / ("models--" + spec.weights.location.replace("/", "--")) / "snapshots" / "main"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert not spec.weights_cached()
    (snap / "pytorch_model.bin").write_bytes(b"x")
    assert spec.weights_cached()
    assert fetch_hf_snapshot(spec.weights, spec.name) == snap
