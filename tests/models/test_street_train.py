"""The StreetNet training loop on a tiny configuration: it learns, it is reproducible, it resumes."""

import numpy as np
import pytest
import torch

from vpanoptic.cli import main as cli_main
from vpanoptic.models.street.checkpoint import load_checkpoint
from vpanoptic.models.street.data import (
    CLASS_IDS,
    EVAL_SEED_RANGE,
    IGNORE,
    DataParams,
    class_lut,
    encode_targets,
    make_batch,
)
from vpanoptic.models.street.training import TrainConfig, train
from vpanoptic.train import TINY_CROP, TINY_NET


def main(argv):
    """`vpanoptic train ARGV`."""
    return cli_main(["train", *argv])

TINY = TrainConfig(seed=3, steps=14, batch_size=2, lr=5e-3, warmup=2, net=dict(TINY_NET),
                   data=DataParams(crop=TINY_CROP))


def run(tmp_path, name, cfg=TINY, **kw):
    losses = []
    train(cfg, tmp_path / name, workers=0, log_every=7, val_every=0, save_every=kw.pop("save_every", 0),
          validate_at_end=False, log=lambda m: None, on_step=lambda step, parts: losses.append(parts["total"]), **kw)
    return losses


def test_training_lowers_the_loss_and_writes_a_loadable_checkpoint(tmp_path):
    losses = run(tmp_path, "a.pt")
    assert len(losses) == TINY.steps and all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:3])
    ckpt = load_checkpoint(tmp_path / "a.pt")
    assert ckpt["meta"]["train"]["seed"] == 3 and ckpt["meta"]["train"]["steps"] == TINY.steps
    assert ckpt["meta"]["classes"] == list(CLASS_IDS)


def test_same_seed_same_weights_and_resume_is_exact(tmp_path):
    cfg = TrainConfig(**{**TINY.__dict__, "steps": 4})
    first = run(tmp_path, "a.pt", cfg)
    again = run(tmp_path, "b.pt", cfg)
    assert first == again
    wa, wb = load_checkpoint(tmp_path / "a.pt")["state_dict"], load_checkpoint(tmp_path / "b.pt")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # stop after 2 steps (state saved), then resume to 4: the same losses as one run
    half = run(tmp_path, "c.pt", TrainConfig(**{**cfg.__dict__, "steps": 2}), save_every=2)
    (tmp_path / "c.pt.state.pt").rename(tmp_path / "d.pt.state.pt")
    rest = run(tmp_path, "d.pt", cfg, resume=True)
    assert half + rest == pytest.approx(first, rel=1e-5)


def test_batches_are_a_function_of_seed_and_step():
    params = DataParams(crop=TINY_CROP)
    a, b = make_batch(0, 5, 2, params), make_batch(0, 5, 2, params)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = make_batch(0, 6, 2, params)
    assert not torch.equal(a["image"], c["image"])
    assert a["image"].shape == (2, 3, TINY_CROP[1], TINY_CROP[0]) and a["image"].dtype == torch.uint8
    assert EVAL_SEED_RANGE > 1000  # evaluation seeds (README) are below it


def test_targets_point_every_thing_cell_to_its_center():
    semantic = np.zeros((16, 24), np.int32)
    instance = np.zeros((16, 24), np.int32)
    semantic[4:12, 4:12], instance[4:12, 4:12] = 13, 7  # one 8x8 car
    sem, center, offset, weight = encode_targets(semantic, instance, 1.0, class_lut())
    assert sem.shape == (16, 24) and center.shape == (4, 6) and offset.shape == (2, 4, 6)
    assert sem[0, 0] == CLASS_IDS.index(0) and sem[5, 5] == CLASS_IDS.index(13)
    cy, cx = (7.5 + 0.5) / 4 - 0.5, (7.5 + 0.5) / 4 - 0.5  # center of mass in output cells
    assert center.max() == pytest.approx(np.exp(-((1 - cy) ** 2 + (1 - cx) ** 2) / 2))
    ys, xs = np.nonzero(weight)
    assert set(zip(ys.tolist(), xs.tolist())) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    np.testing.assert_allclose(ys + offset[0, ys, xs], cy)
    np.testing.assert_allclose(xs + offset[1, ys, xs], cx)
    assert IGNORE not in sem


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "x.pt"), "--steps", "0"]) == 2
    assert "steps is 0" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "x.pt"), "--sigma", "0"]) == 2
    assert "sigma is 0" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "x.pt"), "--nms-kernel", "4"]) == 2
    assert "nms_kernel is 4" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_grouping_defaults_are_stored_and_used_by_the_model(tmp_path):
    from vpanoptic.models.registry import build_model

    cfg = TrainConfig(seed=3, steps=2, batch_size=2, warmup=1, net=dict(TINY_NET),
                      data=DataParams(crop=TINY_CROP, sigma=1.0), grouping={"nms_kernel": 3})
    run(tmp_path, "g.pt", cfg)
    ckpt = load_checkpoint(tmp_path / "g.pt")
    assert ckpt["meta"]["grouping"] == {"nms_kernel": 3} and ckpt["meta"]["train"]["data"]["sigma"] == 1.0
    model = build_model("vpanoptic-street", device="cpu", weights=str(tmp_path / "g.pt"))
    assert model.predictor.params.nms_kernel == 3                                   # the checkpoint's
    model = build_model("vpanoptic-street", device="cpu", weights=str(tmp_path / "g.pt"), nms_kernel=7)
    assert model.predictor.params.nms_kernel == 7                                   # an explicit option wins


def test_sharper_centers_with_a_smaller_sigma():
    sem = np.zeros((32, 32), np.int32)
    inst = np.zeros((32, 32), np.int32)
    sem[8:24, 8:24], inst[8:24, 8:24] = 13, 1
    wide = encode_targets(sem, inst, 2.0, class_lut())[1]
    sharp = encode_targets(sem, inst, 1.0, class_lut())[1]
    assert wide.max() == pytest.approx(sharp.max(), abs=0.2)
    assert (sharp > 0.5).sum() < (wide > 0.5).sum()


def test_recipe_runs_its_stages_in_order_and_skips_finished_ones(tmp_path, monkeypatch, capsys):
    import vpanoptic.train as train_cli

    monkeypatch.setitem(train_cli.RECIPES, "test", [
        {"seed": 0, "steps": 2, "batch_size": 2},
        {"seed": 1, "steps": 2, "batch_size": 2, "sigma": 1.0, "nms_kernel": 3, "lr": 1e-3},
    ])
    out = tmp_path / "net.pt"
    args = ["--recipe", "test", "--out", str(out), "--tiny", "--workers", "0", "--val-every", "0",
            "--save-every", "0", "--log-every", "1"]
    assert main(args) == 0
    stage1 = tmp_path / "net.stage1.pt"
    first, final = load_checkpoint(stage1), load_checkpoint(out)
    assert first["meta"]["train"]["init"] is None and first["meta"]["grouping"] == {}
    assert final["meta"]["train"]["init"]["file"] == "net.stage1.pt"            # stage 2 started from stage 1
    assert final["meta"]["grouping"] == {"nms_kernel": 3} and final["meta"]["train"]["lr"] == 1e-3
    assert final["meta"]["train"]["data"]["sigma"] == 1.0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(args) == 0                                                      # both done: nothing retrained
    assert capsys.readouterr().out.count("skipped") == 2 and out.read_bytes() == before
    stage1.write_bytes(stage1.read_bytes()[:-10])                               # a damaged stage is an error
    assert main(args) == 2
    assert "stage1" in capsys.readouterr().err
    assert main(["--recipe", "test", "--out", str(out), "--init", str(out)]) == 2
