"""The memory a training run needs, estimated before anything large is allocated.

latent_dim = 10^8 asks for a 160 GB weight matrix, k = 10^7 for a 256 GB batch; torch would fail deep in
the model's constructor (or page in gigabytes first). Here the model is built on the meta device, where
tensors have shapes but no memory, and the estimate has three parts:
  weights  every parameter and buffer, four times over while training: the weights, their gradients and
           Adam's two moments (five with an ema average);
  batch    a training step of batch_size points x k samples: the tensors autograd saves in one forward pass
           of the objective (run on the meta device at that size), twice: the backward pass makes a gradient
           of each;
  chunk    the largest chunk the final evaluation scores (evaluation.chunk_shape): points x samples x the widest
           activation, a few times over (evaluation keeps no graph).
A run needs weights x (4 or 5) + batch to train, and weights + chunk to be evaluated. When that is more
than this process may use (the machine's memory or a cgroup's, or an address-space limit such as
`ulimit -v`, less what the process already holds) the run is refused with one line naming the setting
that makes it large (the one whose default shrinks the estimate most) and the estimate.

flow_steps and pixel_layers repeat one block, so the model is built with 1 and 2 of them and the costs are
extrapolated linearly: building 10^5 flow steps only to measure them would take minutes.
"""

from __future__ import annotations

import dataclasses
import math
import resource
from pathlib import Path

import torch
from torch import nn

from .. import models
from ..config import schema as cfg
from ..data.npfiles import memory_bytes
from ..errors import VaelabError
from ..logs import LOGGER
from . import objectives
from .evaluation import chunk_shape, widest_activation

DEPTHS = ("flow_steps", "pixel_layers")  # settings that repeat an identical block of the model
# Evaluation keeps no graph: at its peak a few tensors of the widest activation's size are alive at once
# (the activation, the next layer's, the likelihood's terms), not every layer's as in training.
EVAL_LIVE = 4
GB = 1e9


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Bytes: one copy of the weights, the tensors one training batch's forward pass keeps, an evaluation chunk."""

    weights: int
    saved: int
    chunk: int
    copies: int = 4  # weights, gradients, Adam's two moments (+1 with ema)

    @property
    def batch(self) -> int:
        """A training step's activations: what the forward pass keeps, and a gradient of each in the backward pass
        (measured peaks of real steps lie within 0.85 and 2 times the weights' copies plus this)."""
        return 2 * self.saved

    @property
    def total(self) -> int:
        return max(self.weights * self.copies + self.batch, self.weights + self.chunk)


def available(device: torch.device = torch.device("cpu")) -> tuple[int, str]:
    """Bytes this process may still allocate on device, and what sets that limit."""
    if device.type == "cuda":  # the device's own memory (its total: what is free depends on other processes)
        total = torch.cuda.get_device_properties(device).total_memory
        return total - torch.cuda.memory_reserved(device), f"the GPU's {total / GB:.1f} GB"
    try:  # what this process holds already (Linux; elsewhere nothing is subtracted)
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    except OSError:
        status = {}
    held = {k: int(status.get(k, "0 kB").split()[0]) * 1024 for k in ("VmRSS", "VmSize")}
    memory = memory_bytes()
    limits = [(memory - held["VmRSS"], f"this machine's {memory / GB:.1f} GB of memory")]
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < memory:
            limits.append((int(text) - held["VmRSS"], f"the container's {int(text) / GB:.1f} GB limit"))
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        limits.append((soft - held["VmSize"], f"the {soft / GB:.1f} GB address-space limit (ulimit -v)"))
    return min(limits)


def _saved_bytes(model: nn.Module, objective, points: int, k: int, dim: int) -> int:
    """Bytes of the tensors autograd saves in one forward pass of objective on points x dim inputs, k samples each
    (on the meta device: shapes, no data)."""
    params = {id(p) for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        base = t._base if t._base is not None else t
        if id(base) not in params:  # a weight saved for its gradient is counted with the weights
            saved[id(base)] = base.numel() * base.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.random.fork_rng(devices=[]):
        objective(model, torch.zeros((points, dim), device="meta"), k=k, beta=1.0)
    return sum(saved.values())


def _measure(c: cfg.Config, shape: tuple[int, ...], points: int, test_points: int) -> tuple[int, int, int]:
    """(weights, saved, chunk) bytes of the model c builds, on the meta device."""
    with torch.device("meta"):
        model = models.build(c, shape)
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    objective = objectives.get(models.estimator_for(c))
    dim = math.prod(shape) + getattr(model, "classes", 0)  # a conditional model's input carries a one-hot label
    if models.is_latent_variable(model):  # as point_bounds will chunk the test split
        width = widest_activation(model)
        chunk_points, samples = chunk_shape(test_points, c.eval_k, width, c.eval_batch)
        chunk = min(chunk_points, test_points) * samples * width * 4 * EVAL_LIVE
    else:  # an autoencoder or an exact likelihood: batches of up to 1024 points, no samples (no graph kept either)
        chunk = min(c.eval_batch or 1024, test_points) * max(dim, _widest(model)) * 4 * EVAL_LIVE
    try:
        return weights, _saved_bytes(model, objective, points, c.k, dim), chunk
    except (RuntimeError, NotImplementedError):  # an operation without a meta kernel: count the weights alone
        return weights, 0, chunk


def estimate(c: cfg.Config, shape: tuple[int, ...], train_points: int, test_points: int) -> Estimate:
    """The memory c's model needs to train on examples of `shape` and be evaluated (the splits' sizes given)."""
    c = c.replace(likelihood=models.likelihood_for(c), prior=models.prior_for(c))
    points, test_points = max(1, min(c.batch_size, train_points)), max(1, test_points)
    clipped = c.replace(**{key: 1 for key in DEPTHS if getattr(c, key) > 2})
    base = _measure(clipped, shape, points, test_points)
    parts = list(base)
    for key in DEPTHS:  # cost(n) = cost(1) + (n - 1) * (cost(2) - cost(1)), the other depths held at 1
        if getattr(c, key) > 2:
            more = _measure(clipped.replace(**{key: 2}), shape, points, test_points)
            parts = [p + (getattr(c, key) - 1) * (m - b) for p, m, b in zip(parts, more, base)]
    return Estimate(*parts, copies=5 if c.ema else 4)


def _widest(model: nn.Module) -> int:
    """Widest output of a Linear layer, or of a convolution's channels over the image (at most 64 pixels wide)."""
    widths = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    widths += [m.out_channels * 64 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    return max(widths + [getattr(model, "activation_width", 0), 1])


def check_training(c: cfg.Config, shape: tuple[int, ...], train_points: int, test_points: int,
                   device: torch.device = torch.device("cpu"), models_at_once: int = 1) -> Estimate | None:
    """Refuse (one VaelabError line) a run whose estimate is more than this process may use; returns the estimate.

    models_at_once: a sweep trains a group of same-shaped models as one, each needing as much."""
    room, limit = available(device)
    points = max(1, min(c.batch_size, train_points))
    samples = c.k if models.estimator_for(c) in ("sgvb-a", "sgvb-b", "iwae") else 1  # the others draw no samples
    _check_outputs(points * models_at_once, samples, shape, _name(c, "k" if samples > 1 else "batch_size"), room, limit)
    try:
        est = estimate(c, shape, train_points, test_points)
    except (RuntimeError, NotImplementedError) as e:  # a model that cannot be built on the meta device: not estimated
        LOGGER.debug(f"memory not estimated: the model cannot be built on the meta device ({str(e).splitlines()[0]})")
        return None
    if est.total * models_at_once > room:
        key = _culprit(c, shape, train_points, test_points, est)
        raise VaelabError(f"{_name(c, key)}: training needs about {_size(est.total * models_at_once)} (weights "
                          f"{_size(est.weights)} x {est.copies} with gradients and Adam's moments, a batch "
                          f"{_size(est.batch)}, an evaluation chunk {_size(est.chunk)}"
                          + (f"; {models_at_once} models at once" if models_at_once > 1 else "")
                          + f"), more than the {_size(room)} this process may use ({limit})")
    return est


def _check_outputs(points: int, samples: int, shape: tuple[int, ...], setting: str, room: int, limit: str) -> None:
    """Refuse a pass whose decoder output alone, (samples, points, D) floats, is more than room: nothing is built."""
    need = points * samples * math.prod(shape) * 4
    if need > room:
        raise VaelabError(f"{setting}: {points} points x {samples} samples need at least {_size(need)} for the "
                          f"decoder's output alone; this process may use {_size(room)} ({limit})")


def check_batch(c: cfg.Config, shape: tuple[int, ...], points: int, samples: int, setting: str,
                device: torch.device = torch.device("cpu")) -> None:
    """Refuse a differentiated pass of a trained model over points x samples (amortization-gap's per-point
    optimisation) that cannot fit; setting: the keyword to name, e.g. "samples = 1000000000"."""
    room, limit = available(device)
    _check_outputs(points, samples, shape, setting, room, limit)
    c = c.replace(likelihood=models.likelihood_for(c), prior=models.prior_for(c))
    with torch.device("meta"):
        model = models.build(c, shape)
    try:
        need = _saved_bytes(model, objectives.sgvb_b, points, samples, math.prod(shape))
    except (RuntimeError, NotImplementedError):  # an operation without a meta kernel
        return
    if need > room:
        raise VaelabError(f"{setting}: {points} points x {samples} samples need about {_size(need)}; this process "
                          f"may use {_size(room)} ({limit})")


def _size(nbytes: float) -> str:
    return f"{nbytes / GB:,.1f} GB" if nbytes >= 0.1 * GB else f"{nbytes / 1e6:,.1f} MB"


def _name(c: cfg.Config, key: str | None) -> str:
    if key is None:
        return f"model {c.model}"
    value = getattr(c, key)
    return f"{key} = {','.join(map(str, value)) if isinstance(value, tuple) else value}"


def _culprit(c: cfg.Config, shape: tuple[int, ...], train_points: int, test_points: int, est: Estimate) -> str | None:
    """The numeric setting whose default shrinks the estimate most (None when none does)."""
    best, key = est.total, None
    for f in dataclasses.fields(cfg.Config):
        if type(f.default) not in (int, float, tuple) or getattr(c, f.name) == f.default:
            continue
        try:
            total = estimate(c.replace(**{f.name: f.default}), shape, train_points, test_points).total
        except (VaelabError, RuntimeError, ValueError):  # a default this model cannot take
            continue
        if total < best:
            best, key = total, f.name
    return key
