"""``vpanoptic models``: the registered models, their dataset, PQ and weights."""

from __future__ import annotations

import argparse

HELP = "list the registered models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ..models.registry import list_models

    entries = list_models()
    width = max(len(e.name) for e in entries)
    dwidth = max(len(e.dataset) for e in entries)
    print(f"{'name':<{width}}  {'dataset':<{dwidth}}  {'PQ':>5}  {'weights':<10}  description")
    for e in entries:
        pq = f"{e.pq:.1f}" if e.pq is not None else "-"
        if e.weights_cached is None:
            cached = "--weights" if e.spec is not None else "-"  # bring your own / needs none
        else:
            cached = "cached" if e.weights_cached() else "not cached"
        print(f"{e.name:<{width}}  {e.dataset:<{dwidth}}  {pq:>5}  {cached:<10}  {e.description}")
    return 0
