"""The export command: a run's decoder or encoder as a TorchScript or ONNX file (runs/export.py)."""

from __future__ import annotations

import argparse

from ..terminal import say

FORMATS = ("onnx", "torchscript")  # runs/export.py's FORMATS (kept torch-free here)
PARTS = ("decoder", "encoder")


def add_parsers(sub) -> None:
    """Add export."""
    p = sub.add_parser("export", help="write RUN's decoder (z -> mean of p(x|z)) or encoder (x -> loc, scale of "
                                      "q(z|x)) as a TorchScript or ONNX file",
                       description="Write a trained run's decoder or encoder for another runtime: TorchScript "
                                   "(torch.jit.load, no vaelab needed) or ONNX (onnxruntime). The batch size is "
                                   "free; PART.json beside the file names its inputs and outputs.")
    p.add_argument("run")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--part", choices=PARTS, default="decoder")
    p.add_argument("--out", metavar="FILE", help="the file to write (default RUN/export/PART.pt or .onnx)")


def _export(args: argparse.Namespace) -> None:
    from ..runs import export

    path = export.export(args.run, args.format, args.part, args.out)
    say(f"wrote {path} and {path.with_suffix('.json')}")


COMMANDS = {"export": _export}
