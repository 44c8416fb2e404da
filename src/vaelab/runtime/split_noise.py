"""Noise that does not depend on how a batch is split across processes, or evaluation into chunks.

A data-parallel run gives each of P processes a slice of every global batch. If each process drew
its own binarization and reparameterisation noise, a 2-process run would see different noise
than a 1-process run with the same seed, and their loss curves would differ by Monte Carlo noise.
Instead, while `split_batch(P, i)` is active every process draws the noise of the whole global
batch from the same generator state and keeps its own slice: the same numbers, in the same order,
as one process drawing for the whole batch. The extra cost is the random numbers of P-1 slices.
Dropout masks are drawn the same way (`dropout`); statistics over the batch (batch norm) are summed over
the processes instead (`split()` says whether the batch is split; models/networks.py ShiftedBatchNorm).
Inside a `streams.block` (evaluation), draws come from counter-based per-point streams instead, so
no chunking of the points or the samples changes them (runtime/streams.py).

A stacked sweep group (sweeps/stacked.py) draws the noise of its M models at once, model dimension third from the
end: (K, M, B, Dz). When the group's models are shared out among processes (a sweep under torchrun), a process
training models `positions` of the group enters `stacked_members(M, positions)`: it draws the whole group's noise,
from the same generator state, and keeps its models' slices, so each model sees the noise it sees in the whole group.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import torch
from torch.distributions import Distribution, Independent

from . import streams

_SPLIT: ContextVar[tuple[int, int] | None] = ContextVar("vaelab_split", default=None)
_MEMBERS: ContextVar[tuple[int, tuple[int, ...]] | None] = ContextVar("vaelab_members", default=None)
MODEL_DIM = -3  # a stacked group's model dimension in every draw: (K, M, B, Dz), (M, B, D)


@contextmanager
def split_batch(parts: int, index: int) -> Iterator[None]:
    """Within the block, this process holds slice `index` of `parts` equal slices of each batch."""
    token = _SPLIT.set((parts, index) if parts > 1 else None)
    try:
        yield
    finally:
        _SPLIT.reset(token)


def split() -> tuple[int, int] | None:
    """(parts, index) while this process holds slice index of parts slices of each batch, else None."""
    return _SPLIT.get()


@contextmanager
def stacked_members(total: int, positions: tuple[int, ...] | list[int]) -> Iterator[None]:
    """Within the block, the stacked models drawn for are models `positions` of a group of `total` (in order)."""
    token = _MEMBERS.set((total, tuple(positions)) if list(positions) != list(range(total)) else None)
    try:
        yield
    finally:
        _MEMBERS.reset(token)


def _whole_group(q: Distribution, total: int, positions: tuple[int, ...]) -> Distribution:
    """q of the models held, widened to the whole group along the model dimension; a model not held takes the
    first held model's parameters (only the shape of the draw matters for it, and every parameter stays valid)."""
    inner = q.base_dist if isinstance(q, Independent) else q
    source = [positions.index(j) if j in positions else 0 for j in range(total)]
    index = torch.tensor(source, device=inner.mean.device)

    def widen(t: torch.Tensor) -> torch.Tensor:
        return torch.broadcast_to(t, inner.batch_shape).index_select(MODEL_DIM, index)

    # the torch.distributions location-scale families (families.py) take their parameters by these names
    wide = type(inner)(**{name: widen(getattr(inner, name)) for name in inner.arg_constraints}, validate_args=False)
    return Independent(wide, q.reinterpreted_batch_ndims, validate_args=False) if isinstance(q, Independent) else wide


def rsample(q: Distribution, k: int) -> torch.Tensor:
    """k reparameterised draws from q, (K, *batch, *event): q.rsample((k,)) unless the batch is split."""
    if streams.current() is not None:
        return streams.draw(q, k)
    members = _MEMBERS.get()
    if members is not None:
        total, positions = members
        full = _whole_group(q, total, positions).rsample((k,))  # (K, total, B, Dz)
        return full.index_select(MODEL_DIM, torch.tensor(positions, device=full.device))
    split = _SPLIT.get()
    if split is None:
        return q.rsample((k,))
    parts, index = split
    # (K, P, B/P, ...) laid out exactly like (K, B, ...) of the unsplit batch; keep our slice
    full = q.expand(torch.Size((parts, *q.batch_shape))).rsample((k,))
    return full.select(1, index)


def rsample_each(q: Distribution) -> torch.Tensor:
    """One reparameterised draw per element of q's (K, B) batch (a layer drawn given the samples above it)."""
    if streams.current() is not None:
        return streams.draw(q, None)
    return q.rsample()


def uniform(shape: torch.Size | tuple[int, ...], *, device: torch.device, dtype: torch.dtype,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """U[0, 1) draws of `shape` (rows first), sliced from the whole batch's draw when the batch is split."""
    split, members = _SPLIT.get(), _MEMBERS.get()
    if members is not None and generator is None:
        total, positions = members
        wide = list(shape)
        wide[MODEL_DIM] = total
        full = torch.rand(wide, device=device, dtype=dtype)
        return full.index_select(MODEL_DIM, torch.tensor(positions, device=device))
    if split is None or generator is not None:
        return torch.rand(shape, generator=generator, device=device, dtype=dtype)
    parts, index = split
    return torch.rand((parts, *shape), device=device, dtype=dtype)[index]


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout(x, p) of a tensor whose rows are on dim -2, (..., B, F); the whole batch's mask sliced when split.

    Dropout's mask is input * bernoulli(1 - p) / (1 - p) drawn in order over the tensor, so drawing it for
    ones of the whole batch's shape, (..., P * B, F), and keeping this process's B rows gives the mask one
    process draws for the whole batch, in its layout (rows of slice i at i * B ...), bit for bit.
    """
    split = _SPLIT.get()
    if split is None or not training or p == 0.0:
        return torch.nn.functional.dropout(x, p, training)
    parts, index = split
    b = x.shape[-2]
    ones = torch.ones((*x.shape[:-2], parts * b, x.shape[-1]), dtype=x.dtype, device=x.device)
    return x * torch.nn.functional.dropout(ones, p, True).narrow(-2, index * b, b)
