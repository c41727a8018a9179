"""The shipped StreetNet checkpoint and the integrity checks of `vpanoptic.models.street.checkpoint`."""

import hashlib
import shutil

import pytest
import torch

from vpanoptic.errors import ModelError
from vpanoptic.models.registry import build_model, get_entry
from vpanoptic.models.street.checkpoint import (
    FORMAT,
    default_weights_path,
    load_checkpoint,
    save_checkpoint,
)
from vpanoptic.models.street.network import StreetNet, StreetNetConfig

TINY = StreetNetConfig(widths=(4, 4, 8, 8, 8), blocks=(1, 1, 1), decoder=(8, 4))
META = {"classes": [0, 1, 2, 5, 8, 10, 11, 13], "thing_ids": [11, 13], "mean": [0.5] * 3, "std": [0.25] * 3,
        "input_size": [96, 64]}


@pytest.fixture()
def tiny_ckpt(tmp_path):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, TINY.to_dict(), META, StreetNet(TINY).state_dict())
    return path


def test_shipped_checkpoint_matches_its_sha256_and_metadata():
    path = default_weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    recorded = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert digest == recorded
    assert path.stat().st_size < 8e6  # a few MB of package data
    ckpt = load_checkpoint()
    meta = ckpt["meta"]
    assert ckpt["format"] == FORMAT
    assert meta["classes"] == [0, 1, 2, 5, 8, 10, 11, 13] and meta["thing_ids"] == [11, 13]
    assert len(meta["mean"]) == len(meta["std"]) == 3 and len(meta["input_size"]) == 2
    assert isinstance(meta["train"]["seed"], int) and meta["train"]["steps"] > 0
    assert 0 < meta["validation"]["PQ"] <= 1
    net = StreetNet(StreetNetConfig.from_dict(ckpt["config"]))
    net.load_state_dict(ckpt["state_dict"])  # strict: every tensor present, right shapes
    assert get_entry("vpanoptic-street").weights_cached()


def test_saved_checkpoint_round_trips(tiny_ckpt):
    ckpt = load_checkpoint(tiny_ckpt)
    net = StreetNet(StreetNetConfig.from_dict(ckpt["config"]))
    net.load_state_dict(ckpt["state_dict"])
    assert ckpt["meta"] == META
    assert all(v.dtype != torch.float16 for v in ckpt["state_dict"].values())


def test_tampered_checkpoint_is_refused(tiny_ckpt):
    data = bytearray(tiny_ckpt.read_bytes())
    data[len(data) // 2] ^= 0x01
    tiny_ckpt.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt or was modified"):
        load_checkpoint(tiny_ckpt)
    with pytest.raises(ModelError, match="corrupt or was modified"):
        build_model("vpanoptic-street", device="cpu", weights=str(tiny_ckpt))


def test_truncated_checkpoint_is_refused(tiny_ckpt):
    data = tiny_ckpt.read_bytes()
    tiny_ckpt.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="corrupt or was modified"):
        load_checkpoint(tiny_ckpt)


def test_checkpoint_without_checksum_or_file_is_refused(tiny_ckpt, tmp_path):
    lonely = tmp_path / "lonely.pt"
    shutil.copy(tiny_ckpt, lonely)
    with pytest.raises(ModelError, match="no checksum file"):
        load_checkpoint(lonely)
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_wrong_payload_with_matching_checksum_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name("other.pt.sha256").write_text(f"{digest}  other.pt\n")
    with pytest.raises(ModelError, match="not a vpanoptic-streetnet"):
        load_checkpoint(path)
