"""Live panoptic segmentation and tracking of a webcam (or a stream, or a file) in a window.

    python demos/webcam.py                          # webcam 0, default model
    python demos/webcam.py webcam:1 --model maskrcnn-v2-coco
    python demos/webcam.py rtsp://user:pass@camera/stream
    python demos/webcam.py clip.mp4 --headless live.mp4 --duration 10   # no display needed

The window shows the overlay (a stable colour per track id, class labels) and a HUD with the
display FPS, the model's time per frame, the end-to-end latency from capture to display and
the number of dropped frames. Keys:

    q / Esc   quit                 f   colour fill on/off
    space / p pause / resume       c   contours on/off
    s         save a snapshot PNG  l   labels on/off
                                   h   HUD on/off

The newest frame always wins (frame policy ``latest``): a slow model shows fewer frames,
never older ones, so latency stays bounded. Streams reconnect by themselves after a drop.
This is `vpanoptic live` with the demo's defaults; see README "Live and batch".
"""

from __future__ import annotations

import argparse
import sys

from vpanoptic.cli import main as vpanoptic_main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="vpanoptic live webcam demo")
    parser.add_argument("source", nargs="?", default="webcam:0",
                        help="webcam:N, /dev/videoN, rtsp:// or http:// URL, or a video file (default webcam:0)")
    parser.add_argument("--model", help="model name (`vpanoptic models`)")
    parser.add_argument("--device", help="auto | cpu | cuda")
    parser.add_argument("--headless", metavar="OUT.mp4", help="write the overlay video here instead of a window")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("-o", "--output", help="folder for summary.json and snapshots")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    return parser.parse_args(argv)


def run(argv=None) -> int:
    args = parse_args(argv)
    command = ["live", args.source]
    for flag, value in (("--model", args.model), ("--device", args.device), ("--headless", args.headless),
                        ("--duration", args.duration), ("-o", args.output)):
        if value is not None:
            command += [flag, str(value)]
    for item in args.set:
        command += ["--set", item]
    return vpanoptic_main(command)


if __name__ == "__main__":
    sys.exit(run())
