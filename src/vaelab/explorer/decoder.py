"""The explorer's decoder: MLP weights for the page's JavaScript, or a grid decoded in advance; and its plane.

The page runs a decoder itself when it is a stack of Linear layers and element-wise activations
whose output becomes the mean of p(x|z) through sigmoid, identity or softmax. That is not
assumed from the class: `page_decoder` runs the same arithmetic as the page (`forward`, float64
over the float32 weights) on probe codes and keeps the page route only when it matches
`model.decode(z).mean` (word probabilities for documents). Any other decoder (conv, or a document
decoder with a softmax over the topics first) is decoded here on a grid over the plane.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn

# element-wise activations the page implements (explorer.js ACTS), by torch class
ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.LeakyReLU: "leaky_relu",
               nn.Softplus: "softplus", nn.Identity: "identity"}
OUTPUTS = ("sigmoid", "identity", "softmax")  # raw output -> mean of p(x|z), tried in this order
MATCH_TOLERANCE = 1e-4  # |page mean - torch mean| on probe codes; 1/255 is what a pixel can show


@dataclass(frozen=True)
class Layer:
    """y = act(x W^T + b): weight (out, in) and bias (out,) as float32, as the page receives them."""

    weight: np.ndarray
    bias: np.ndarray
    act: str = "identity"
    slope: float = 0.01  # leaky_relu's negative slope


@dataclass(frozen=True)
class Plane:
    """z = origin + a axes[0] + b axes[1] + sum_k s_k sds[k] others[k]: the page's 2-D view of the latent."""

    origin: np.ndarray  # (Dz,)
    axes: np.ndarray  # (2, Dz), orthonormal (the unit basis for a 2-D latent)
    others: np.ndarray  # (M, Dz): the remaining principal directions, one slider each
    sds: np.ndarray  # (M,): their standard deviations over the test codes (slider unit)
    what: str  # "latent" (the 2-D or 1-D latent itself) or "pca"

    def project(self, z: np.ndarray) -> np.ndarray:
        """Plane coordinates (a, b) of codes (N, Dz) -> (N, 2)."""
        return (z - self.origin) @ self.axes.T

    def code(self, ab: np.ndarray, sliders: np.ndarray | None = None) -> np.ndarray:
        """Codes (N, Dz) at plane coordinates (N, 2), the other directions at `sliders` sds (default 0)."""
        z = self.origin + ab @ self.axes
        if sliders is not None and len(self.others):
            z = z + (np.asarray(sliders) * self.sds) @ self.others
        return z


def plane(codes: np.ndarray) -> Plane:
    """The latent itself when it has at most two dimensions; else the plane of the two principal directions.

    The principal directions of the test posterior means (scikit-learn's PCA) pass through their
    mean; the others become sliders in units of their standard deviation.
    """
    n, d = codes.shape
    if d <= 2 or n < 3:
        axes = np.eye(2, d)  # a 1-D latent's second axis is zero: b moves nothing
        return Plane(np.zeros(d), axes, np.zeros((0, d)), np.zeros(0), "latent" if d <= 2 else "first two dims")
    pca = PCA(min(d, n)).fit(codes.astype(np.float64))
    comps, sds = pca.components_, np.sqrt(pca.explained_variance_)
    return Plane(pca.mean_, comps[:2], comps[2:], sds[2:], "pca")


def mlp_layers(decoder: object) -> list[Layer] | None:
    """The Linear + activation stack of a decoder, or None when it is anything else."""
    if isinstance(decoder, nn.Linear):
        modules = [decoder]
    elif isinstance(decoder, nn.Sequential) and type(decoder).forward is nn.Sequential.forward:
        modules = list(decoder)  # a subclass with its own forward (e.g. BagEncoder's log1p) is not a plain stack
    else:
        return None
    layers: list[Layer] = []
    for m in modules:
        if isinstance(m, nn.Linear):
            b = m.bias if m.bias is not None else torch.zeros(m.out_features)
            layers.append(Layer(m.weight.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()))
        elif type(m) in ACTIVATIONS and layers and layers[-1].act == "identity":
            slope = float(getattr(m, "negative_slope", 0.01))
            if isinstance(m, nn.Softplus) and (m.beta != 1 or m.threshold != 20):
                return None
            layers[-1] = Layer(layers[-1].weight, layers[-1].bias, ACTIVATIONS[type(m)], slope)
        else:
            return None
    return layers or None


def _act(h: np.ndarray, layer: Layer) -> np.ndarray:
    if layer.act == "relu":
        return np.maximum(h, 0.0)
    if layer.act == "tanh":
        return np.tanh(h)
    if layer.act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-h))
    if layer.act == "leaky_relu":
        return np.where(h >= 0, h, layer.slope * h)
    if layer.act == "softplus":
        return np.where(h > 20, h, np.log1p(np.exp(np.minimum(h, 20))))
    return h


def forward(layers: list[Layer], z: np.ndarray, output: str) -> np.ndarray:
    """What the page computes: the layers in float64 over float32 weights, then the output map, (N, D)."""
    h = np.asarray(z, dtype=np.float64)
    for layer in layers:
        h = _act(h @ layer.weight.astype(np.float64).T + layer.bias.astype(np.float64), layer)
    if output == "sigmoid":
        return 1.0 / (1.0 + np.exp(-h))
    if output == "softmax":
        e = np.exp(h - h.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return h


@torch.no_grad()
def means(model: nn.Module, z: np.ndarray, documents: bool, y: np.ndarray | None = None) -> np.ndarray:
    """The mean of p(x|z) through the model contract (word probabilities for documents), (N, D) float64; a
    conditional model's p(x | z, y) with one-hot labels y (N, K)."""
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(z), 1024):
        zi = torch.as_tensor(z[i:i + 1024], dtype=torch.float32, device=dev)
        d = model.decode(zi) if y is None else model.decode(zi, torch.as_tensor(y[i:i + 1024], dtype=torch.float32,
                                                                                  device=dev))
        m = d.mean.double()
        out.append((m / m.sum(-1, keepdim=True) if documents else m).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def page_decoder(model: nn.Module, probes: np.ndarray, documents: bool, y: np.ndarray | None = None
                 ) -> tuple[list[Layer], str] | None:
    """(layers, output map) when the page's arithmetic reproduces model.decode on the probe codes, else None.
    A conditional model's decoder reads [z, y] (Dz + K): probes (N, Dz) with one-hot labels y (N, K)."""
    layers = mlp_layers(getattr(model, "decoder", None))
    inputs = probes if y is None else np.concatenate([probes, y], 1)  # (N, Dz) or (N, Dz + K)
    if layers is None or layers[0].weight.shape[1] != inputs.shape[1]:
        return None
    target = means(model, probes, documents, y)
    for output in OUTPUTS:
        got = forward(layers, inputs, output)
        if got.shape == target.shape and np.abs(got - target).max() <= MATCH_TOLERANCE:
            return layers, output
    return None


def b64(a: np.ndarray, dtype: str) -> str:
    """An array as base64 of its little-endian bytes (the page reads them as a typed array)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def unb64(s: str, dtype: str) -> np.ndarray:
    """The inverse of b64, flat."""
    return np.frombuffer(base64.b64decode(s), dtype=dtype)


def export_layers(layers: list[Layer]) -> list[dict]:
    """The layers as the page's JSON: base64 float32 weights (row-major (out, in)) and biases."""
    return [{"in": int(L.weight.shape[1]), "out": int(L.weight.shape[0]), "act": L.act, "slope": L.slope,
             "w": b64(L.weight, "<f4"), "b": b64(L.bias, "<f4")} for L in layers]


def import_layers(spec: list[dict]) -> list[Layer]:
    """The layers back from the page's JSON (for tests: the round trip is exact)."""
    return [Layer(unb64(d["w"], "<f4").reshape(d["out"], d["in"]), unb64(d["b"], "<f4"), d["act"], d["slope"])
            for d in spec]


def grid_nodes(extent: tuple[float, float, float, float], n: int) -> np.ndarray:
    """Plane coordinates of an n x n grid over extent (x0, x1, y0, y1), row-major from (x0, y0), (n*n, 2)."""
    x0, x1, y0, y1 = extent
    a, b = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return np.stack([a.ravel(), b.ravel()], 1)


def to_levels(p: np.ndarray) -> np.ndarray:
    """Means in [0, 1] as the 0-255 levels a canvas shows."""
    return np.round(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8)
