import numpy as np
import pytest

from vpanoptic.io.formats import (
    decode_coco_ids,
    decode_kitti_step,
    encode_coco_ids,
    encode_kitti_step,
    read_kitti_step,
    write_kitti_step,
)


def test_kitti_step_codec_values():
    sem = np.array([[0, 13, 255]])
    inst = np.array([[0, 258, 0]])
    rgb = encode_kitti_step(sem, inst)
    assert rgb[0, 1].tolist() == [13, 1, 2]  # 258 = 1 * 256 + 2
    s, i = decode_kitti_step(rgb)
    np.testing.assert_array_equal(s, sem)
    np.testing.assert_array_equal(i, inst)


def test_kitti_step_png_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    sem = rng.integers(0, 256, (7, 9))
    inst = rng.integers(0, 65536, (7, 9))
    write_kitti_step(tmp_path / "a.png", sem, inst)
    s, i = read_kitti_step(tmp_path / "a.png")
    np.testing.assert_array_equal(s, sem)
    np.testing.assert_array_equal(i, inst)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left


@pytest.mark.parametrize("sem,inst", [(np.array([[256]]), np.array([[0]])), (np.array([[0]]), np.array([[65536]]))])
def test_kitti_step_range_errors(sem, inst):
    with pytest.raises(ValueError):
        encode_kitti_step(sem, inst)


def test_coco_ids_codec():
    ids = np.array([[0, 1, 256, 65536 + 7, (1 << 24) - 1]])
    rgb = encode_coco_ids(ids)
    assert rgb[0, 2].tolist() == [0, 1, 0]
    np.testing.assert_array_equal(decode_coco_ids(rgb), ids)
    with pytest.raises(ValueError):
        encode_coco_ids(np.array([[1 << 24]]))


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_kitti_step(tmp_path / "missing.png")
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        read_kitti_step(tmp_path / "x.png")
