"""Trackers run their small torch ops on one thread whatever the caller set, and restore it."""

import numpy as np
import pytest
import torch

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.tracking import build_tracker, torch_single_thread
from vpanoptic.types import Frame, PanopticFrame


def clip(n=6):
    out = []
    for k in range(n):
        sem = np.zeros((40, 80), np.int32)
        inst = np.zeros((40, 80), np.int32)
        for j in range(3):
            y, x = 5 + 10 * j, 5 + 4 * k + 15 * j
            sem[y:y + 8, x:x + 10] = 13
            inst[y:y + 8, x:x + 10] = j + 1
        img = np.random.default_rng(k).integers(0, 255, (40, 80, 3), np.uint8)
        pf = PanopticFrame.from_labels(Frame(k, k, k / 10, 0.0, img), sem, inst, KITTI_STEP)
        pf.track_ids[:] = -1
        out.append(pf)
    return out


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_single_thread_context_restores_the_count(two_threads):
    with torch_single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_single_thread():
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("name", ["hungarian", "greedy"])
def test_update_leaves_the_callers_thread_count_and_gives_the_same_ids(name, two_threads):
    seen = []
    tracker = build_tracker(name)
    for pf in clip():
        tracker.update(pf)
        seen.append(torch.get_num_threads())
        assert (pf.track_ids[pf.is_thing] > 0).all()
    assert seen == [2] * len(seen)
    torch.set_num_threads(1)
    tracker = build_tracker(name)
    ids_one = [tracker.update(pf).track_ids.tolist() for pf in clip()]
    torch.set_num_threads(2)
    tracker = build_tracker(name)
    ids_two = [tracker.update(pf).track_ids.tolist() for pf in clip()]
    assert ids_one == ids_two
