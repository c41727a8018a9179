"""The three rules give the same maps on an accelerator as on the CPU, and stay on the device."""

import pytest
import torch

from vpanoptic.fusion import combine_query_masks, detr_panoptic, fuse_things_and_stuff

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    k = 6
    logits = torch.randint(-16, 17, (k, 8, 8), generator=g) / 8  # distinct values stay distinct in float32
    probs = torch.randint(0, 17, (k, 16, 16), generator=g) / 16
    scores = torch.randint(9, 17, (k,), generator=g) / 16
    classes = torch.tensor([1, 3, 92, 92, 184, 1])
    masks = torch.rand((k, 16, 16), generator=g) > 0.5
    semantic = torch.randint(-1, 3, (16, 16), generator=g) * 46 + 92  # -1 → 46 ("things"), 92, 138, 184
    return logits, probs, scores, classes, masks, semantic


def run_all(device, seed):
    logits, probs, scores, classes, masks, semantic = (t.to(device) for t in inputs(seed))
    things = classes <= 90
    return [
        detr_panoptic(logits, scores, classes, things, processed_size=(16, 16), target_size=(21, 13)),
        combine_query_masks(probs, scores, classes, things),
        fuse_things_and_stuff(masks, scores, classes, semantic, stuff_ids=[92, 138, 184], stuff_area_threshold=3),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_rules_run_on_the_device_and_agree_with_the_cpu(device):
    for seed in range(20):
        for got, want in zip(run_all(device, seed), run_all("cpu", seed)):
            assert got.id_map.device.type == device and got.category_ids.device.type == device
            assert torch.equal(got.id_map.cpu(), want.id_map), seed
            assert torch.equal(got.category_ids.cpu(), want.category_ids) and torch.equal(
                got.is_thing.cpu(), want.is_thing
            )
