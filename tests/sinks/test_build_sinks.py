"""build_sinks: output layout, names and errors."""

from __future__ import annotations

import json

import av
import pytest
from sink_scenes import scene

from vpanoptic.errors import ConfigError
from vpanoptic.sinks import (
    SINK_KINDS,
    CocoPanopticSink,
    JsonlSink,
    KittiStepSink,
    Sink,
    VideoSink,
    build_sinks,
)


def test_all_outputs_layout(tmp_path):
    out_dir = tmp_path / "run" / "out"  # created, parents too
    sinks = build_sinks(SINK_KINDS, out_dir, fps=12.5, crf=30)
    assert [s.name for s in sinks] == ["video", "png", "coco", "jsonl"]
    assert [type(s) for s in sinks] == [VideoSink, KittiStepSink, CocoPanopticSink, JsonlSink]
    assert all(isinstance(s, Sink) for s in sinks)
    assert sinks[0].fps == 12.5 and sinks[0].crf == 30
    for i in range(3):
        pf = scene(i, i / 12.5)
        for sink in sinks:
            sink.write(pf)
    for sink in sinks:
        sink.close()
    with av.open(str(out_dir / "video.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3
    assert sorted(p.name for p in (out_dir / "panoptic_kitti").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert len(json.loads((out_dir / "coco" / "panoptic.json").read_text())["images"]) == 3
    assert len(list((out_dir / "coco" / "panoptic").glob("*.png"))) == 3
    assert len((out_dir / "segments.jsonl").read_text().splitlines()) == 3


def test_subset_and_comma_string(tmp_path):
    assert [s.name for s in build_sinks(["jsonl", "png"], tmp_path)] == ["jsonl", "png"]
    sinks = build_sinks("coco, video", tmp_path / "b")
    assert [s.name for s in sinks] == ["coco", "video"]
    for sink in sinks:
        sink.close()
    assert build_sinks([], tmp_path / "c") == []


def test_unknown_kind_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        build_sinks(["video", "x"], tmp_path / "out")
    assert str(info.value) == "unknown output 'x'; choose from video, png, coco, jsonl"
    assert not (tmp_path / "out").exists()  # nothing created
    with pytest.raises(ConfigError, match="more than once"):
        build_sinks(["png", "png"], tmp_path / "out")
