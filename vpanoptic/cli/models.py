"""``vpanoptic models``: the registered models, their dataset, PQ and weights; ``fetch`` and ``import`` of weights.

    vpanoptic models                      list the models
    vpanoptic models fetch NAME [--to DIR]  download NAME's weights into the cache, or a portable folder DIR/NAME
    vpanoptic models import DIR           place portable folder(s) into the cache here (checksums verified)
"""

from __future__ import annotations

import argparse

HELP = "list the registered models; fetch or import their weights"

#: PQ of entries without a published number, measured here on held-out synthetic clips (%, marked "*"):
#: `python benchmarks/model_quality.py --seeds 1001,1002 --frames 40`, 2026-12-08 (docs/benchmarks.md).
MEASURED_PQ = {"vpanoptic-street": 76.0}
MEASURED_NOTE = ("* measured on 14 held-out synthetic clips (benchmarks/model_quality.py, docs/benchmarks.md), "
                 "not on real footage; the others: published, on their validation sets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser),
                                    title="actions (none: list the models)")
    fetch = actions.add_parser("fetch", help="download a model's weights (into the cache, or a portable folder)",
                               description="Download a model's published weights into the standard cache, or with "
                               "--to DIR into the portable folder DIR/NAME (files + manifest.json with their sha256) "
                               "to carry to a machine without network and `vpanoptic models import` there.")
    fetch.add_argument("name", metavar="NAME", help="model name (see `vpanoptic models`)")
    fetch.add_argument("--to", metavar="DIR", help="write the portable folder DIR/NAME instead of filling the cache")
    imp = actions.add_parser("import", help="place portable weights folder(s) into the cache here",
                             description="Check the files of DIR (a folder written by `models fetch --to`, or one "
                             "NAME/ in it) against their sha256 and place them in the hub or torch cache.")
    imp.add_argument("folder", metavar="DIR", help="the --to folder of `vpanoptic models fetch`, or one NAME/ in it")


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "action", None)
    if action == "fetch":
        from ..models.hub.portable import export_weights, fetch_weights, source_of
        from ..models.registry import get_entry

        source = source_of(args.name, get_entry(args.name).spec)
        if args.to:
            print(f"{args.name}: portable folder {export_weights(args.name, source, args.to)}")
        else:
            print(f"{args.name}: cached in {fetch_weights(args.name, source)}")
        return 0
    if action == "import":
        from ..models.hub.portable import import_weights
        from ..models.registry import get_entry

        for name, path in import_weights(args.folder, lambda name: get_entry(name).spec):
            print(f"{name}: imported into {path}")
        return 0
    return _list()


def _list() -> int:
    from ..models.registry import list_models

    entries = list_models()
    width = max(len(e.name) for e in entries)
    dwidth = max(len(e.dataset) for e in entries)
    print(f"{'name':<{width}}  {'dataset':<{dwidth}}  {'PQ':>5}  {'weights':<10}  description")
    for e in entries:
        if e.pq is not None:
            pq = f"{e.pq:.1f}"
        elif e.name in MEASURED_PQ:
            pq = f"{MEASURED_PQ[e.name]:.1f}*"
        else:
            pq = "-"
        if e.weights_cached is None:
            cached = "--weights" if e.spec is not None else "-"  # bring your own / needs none
        else:
            cached = "cached" if e.weights_cached() else "not cached"
        print(f"{e.name:<{width}}  {e.dataset:<{dwidth}}  {pq:>5}  {cached:<10}  {e.description}")
    if any(e.pq is None and e.name in MEASURED_PQ for e in entries):
        print(MEASURED_NOTE)
    return 0
