"""The explore command: RUN/explorer.html, the latent space in the browser (explorer/page.py)."""

from __future__ import annotations

import argparse

from ..config import choices  # torch-free: the library is imported in the command that runs
from ..terminal import say
from .numbers import COUNT


def add_parsers(sub) -> None:
    """Add explore."""
    p = sub.add_parser("explore", help="write RUN/explorer.html: move through the latent space in a browser",
                       description="Write RUN/explorer.html, one self-contained page (no server, no network): "
                                   "the test codes on a 2-D latent plane, decoded in the page as the pointer moves.")
    p.add_argument("run")
    p.add_argument("--points", type=COUNT, default=2000, help="test examples in the scatter (default 2000)")
    p.add_argument("--decoder", choices=("auto", "grid"), default="auto",
                   help="auto: run an MLP decoder in the page, else a pre-decoded grid; grid: always the grid")
    p.add_argument("--device", choices=choices.DEVICES, default="cpu")


def _explore(args: argparse.Namespace) -> None:
    from ..explorer import page as explorer

    say(f"wrote {explorer.write_explorer(args.run, points=args.points, decoder=args.decoder, device=args.device)}")


COMMANDS = {"explore": _explore}
