"""Plots of an experiment summary (matplotlib, an optional dependency: ``vpanoptic[plots]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError

__all__ = ["plot_experiment"]

BAR_METRICS = ("STQ", "AQ", "SQ", "PQ", "VPQ", "MOTSA")
DPI = 110
MAX_WIDTH = 12.0  # inches


def _width(groups: int, bars: int) -> float:
    return min(MAX_WIDTH, max(6.0, 2.0 + 0.18 * groups * max(bars, 1)))


def _ylim(ax, values) -> None:
    low = min([0.0] + [v for v in values if np.isfinite(v)])
    ax.set_ylim(low - 5 if low < 0 else 0, 100)
    if low < 0:
        ax.axhline(0, color="black", linewidth=0.6)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("plots need matplotlib: pip install 'vpanoptic[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_experiment(summary: dict, out_dir: str | Path) -> list[Path]:
    """Write ``metrics.png``, ``per_sequence.png`` and ``id_switches.png``; returns their paths."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    runs = summary["configurations"]
    cmap = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")
    colors = [cmap(i % cmap.N) for i in range(len(runs))]  # one distinct colour per configuration
    paths = []

    # 1. Metric per configuration: grouped bars, one group per metric.
    keys = [k for k in BAR_METRICS if any(k in r["numbers"] for r in runs)]
    fig, ax = plt.subplots(figsize=(_width(len(keys), len(runs)), 4.5))
    width = 0.8 / max(len(runs), 1)
    x = np.arange(len(keys))
    seen = []
    for i, r in enumerate(runs):
        vals = [100 * (r["numbers"].get(k) or 0.0) for k in keys]
        seen += vals
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, vals, width, label=r["name"], color=colors[i])
    ax.set_xticks(x, keys)
    ax.set_ylabel("%")
    _ylim(ax, seen)
    ax.set_title(f"{summary['name']}: metrics per configuration")
    ax.legend(fontsize=7, ncol=2)
    paths.append(_save(fig, out_dir / "metrics.png", plt))

    # 2. STQ and AQ per clip.
    clips = summary["clips"]
    fig, axes = plt.subplots(2, 1, figsize=(_width(len(clips), len(runs)), 6.5), sharex=True)
    x = np.arange(len(clips))
    for ax, key in zip(axes, ("STQ", "AQ")):
        for i, r in enumerate(runs):
            vals = [100 * (r["per_sequence"][c].get(key) or 0.0) for c in clips]
            ax.bar(x + (i - (len(runs) - 1) / 2) * width, vals, width, label=r["name"], color=colors[i])
        ax.set_ylabel(f"{key} %")
        ax.set_ylim(0, 100)
    axes[0].set_title("per clip")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_xticks(x, clips, rotation=20)
    paths.append(_save(fig, out_dir / "per_sequence.png", plt))

    # 3. Cumulative identity switches over time, summed over clips (frame index within a clip).
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for i, r in enumerate(runs):
        series = [np.asarray(s, float) for s in r["id_switches_over_time"].values() if len(s)]
        if not series:
            continue
        n = max(len(s) for s in series)
        total = np.sum([np.pad(s, (0, n - len(s)), mode="edge") for s in series], axis=0)
        ax.plot(np.arange(n), total, label=r["name"], color=colors[i])
    ax.set_xlabel("frame")
    ax.set_ylabel("identity switches (cumulative, all clips)")
    ax.set_title("identity switches over time")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "id_switches.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
