"""A trained run's decoder or encoder as a file another runtime loads: TorchScript (torch.jit) or ONNX.

What each part computes, with no probability object left (a graph holds tensors only):
    decoder  z (N, Dz)  -> mean (N, D): E[x | z], the mean of p(x|z) (Bernoulli: the pixel probabilities,
                          Gaussian: the means, a document model: the word probabilities); z as the model's
                          prior draws it (a hierarchical model's z packs every layer, bottom first)
    encoder  x (N, D)   -> loc (N, Dz), scale (N, Dz): the location and scale of q(z|x) of the first latent
                          layer (a plain autoencoder: its code alone, `code`); x flat, as the model reads it
                          (values in [0, 1]; binarized where the run binarizes)
A conditional VAE (Sohn et al. 2015) is conditioned on a one-hot label y (N, K): its decoder takes (z, y), its
encoder x and y joined, [x, y] (N, D + K).
N is free in both formats (traced with one batch size, run with any). Written beside it, PART.json names the
inputs, outputs, shapes and the run's weights (SHA-256), so the file can be used without vaelab.
Autoregressive decoders (pixel-vae, pixelcnn) have no mean of p(x|z) in closed form and are refused, as is
the encoder of a flow posterior (q(z|x) is not a location-scale family there).
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_write
from ..errors import VaelabError
from ..models import contract
from . import json_text, loading
from .checkpoint import read_shape
from .folder import WEIGHTS, RunFolder

FORMATS = ("torchscript", "onnx")
PARTS = ("decoder", "encoder")
EXTENSIONS = {"torchscript": "pt", "onnx": "onnx"}
EXPORT = "export"  # RUN/export/: the default folder of exported files
ONNX_OPSET = 17


class DecoderGraph(nn.Module):
    """z (N, Dz) -> E[x | z] (N, D)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z).mean


class LabelledDecoderGraph(nn.Module):
    """z (N, Dz), y (N, K) one-hot -> E[x | z, y] (N, D): a conditional VAE's decoder."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z, y).mean


class EncoderGraph(nn.Module):
    """x (N, D) -> (loc, scale) of q(z|x), each (N, Dz)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.model.encode(x)
        return q.mean, q.stddev


class CodeGraph(nn.Module):
    """x (N, D) -> the code z = f(x) (N, Dz) of a plain autoencoder."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed(x)


def graph(model: nn.Module, part: str) -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str], list[str]]:
    """The part of model as a tensors-only module, example inputs (2, ...) to trace it with, and its input and
    output names; VaelabError for a part that has no such graph."""
    if part not in PARTS:
        raise VaelabError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    if contract.is_exact(model):
        raise VaelabError(f"model {type(model).__name__} has no latent, so no {part} to export")
    g = torch.Generator().manual_seed(0)
    classes = getattr(model, "classes", 0) if getattr(model, "label_conditional", False) else 0
    x = torch.rand(2, model.data_dim + classes, generator=g)  # (2, D [+ K]): traced with 2, run with any N
    if classes:
        x[:, model.data_dim:] = torch.eye(classes)[:2]  # a conditional model reads [x, onehot(y)]
    with torch.no_grad():
        if part == "decoder" and classes:
            return LabelledDecoderGraph(model), (model.sample_latent(2, g), torch.eye(classes)[:2]), ["z", "y"], \
                ["mean"]
        if part == "decoder":
            z = model.sample_latent(2, g) if contract.is_latent_variable(model) else model.embed(x)  # (2, Dz...)
            try:
                model.decode(z).mean
            except NotImplementedError:
                raise VaelabError(f"model {type(model).__name__}'s p(x|z) is autoregressive: it has no mean in "
                                  f"closed form, so no decoder graph to export (export its encoder)") from None
            return DecoderGraph(model), (z,), ["z"], ["mean"]
    if not contract.is_latent_variable(model):
        return CodeGraph(model), (x,), ["x"], ["code"]
    if not model.mean_in_closed_form:
        raise VaelabError(f"model {type(model).__name__}'s q(z|x) is pushed through a flow: it has no location "
                          f"and scale to export (export its decoder)")
    return EncoderGraph(model), (x,), ["x"], ["loc", "scale"]


def _torchscript(module: nn.Module, example: tuple[torch.Tensor, ...]) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's notes on tracing (shapes read as constants: none here)
        traced = torch.jit.trace(module, example, check_trace=False)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return buf.getvalue()


def _onnx(module: nn.Module, example: tuple[torch.Tensor, ...], inputs: list[str], outputs: list[str]) -> bytes:
    buf = io.BytesIO()
    batch = {0: "N"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation note
        # dynamo=False: torch's TorchScript-based exporter, which needs the onnx package but not onnxscript
        torch.onnx.export(module, example, buf, input_names=inputs, output_names=outputs,
                          dynamic_axes={name: batch for name in inputs + outputs}, opset_version=ONNX_OPSET,
                          dynamo=False)
    return buf.getvalue()


def describe(model: nn.Module, part: str, fmt: str, module: nn.Module, example: tuple[torch.Tensor, ...],
             inputs: list[str], outputs: list[str], sha256: str, shape: tuple[int, ...]) -> dict:
    """PART.json: what the exported file takes and returns, and which weights it holds."""
    with torch.no_grad():
        out = module(*example)
    out = out if isinstance(out, tuple) else (out,)
    spec = lambda names, ts: [{"name": n, "shape": ["N", *t.shape[1:]], "dtype": "float32"}  # noqa: E731
                              for n, t in zip(names, ts)]
    return {"format": fmt, "part": part, "model": type(model).__name__, "inputs": spec(inputs, example),
            "outputs": spec(outputs, out), "data_shape": list(shape), "likelihood": getattr(model, "likelihood", None),
            "weights_sha256": sha256, "onnx_opset": ONNX_OPSET if fmt == "onnx" else None}


def export(run: str | Path, fmt: str = "torchscript", part: str = "decoder", out: str | Path | None = None,
           weights: str = WEIGHTS) -> Path:
    """Write the run's part (decoder or encoder) in format fmt to out (default RUN/export/PART.pt or .onnx) and
    PART.json beside it; returns the file's path. Reads only the run folder (no data)."""
    if fmt not in FORMATS:
        raise VaelabError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if part not in PARTS:
        raise VaelabError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise VaelabError("ONNX export needs the onnx package: pip install 'vaelab[export]' (onnx, onnxruntime)")
    folder = RunFolder(run)
    c = folder.read_config()  # refuses a folder that is not a run
    shape = read_shape(folder / weights)
    model, sha256 = loading.load_weights_of(c, run, shape, "cpu", weights)
    module, example, inputs, outputs = graph(model, part)
    module.eval().requires_grad_(False)  # outputs a user can turn into NumPy arrays directly
    path = Path(out) if out is not None else folder.subfolder(EXPORT) / f"{part}.{EXTENSIONS[fmt]}"
    if path.is_dir():
        raise VaelabError(f"{path} is a folder; name the file to write")
    if path.suffix == ".json":  # PART.json is written beside the file, under its name
        raise VaelabError(f"{path}: the exported file's description goes to a .json beside it; name the file "
                          f".{EXTENSIONS[fmt]}")
    data = _torchscript(module, example) if fmt == "torchscript" else _onnx(module, example, inputs, outputs)
    info = describe(model, part, fmt, module, example, inputs, outputs, sha256, shape)
    if out is None:
        folder.make_subfolder(EXPORT)
    elif not path.parent.is_dir():
        raise VaelabError(f"{path.parent} is not a folder")
    atomic_write(path, data)
    json_text.write_json(path.with_suffix(".json"), info)
    return path
