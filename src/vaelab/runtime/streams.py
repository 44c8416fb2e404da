"""Evaluation's random numbers: each draw a pure function of (seed, point, sample, coordinate).

Evaluation walks the points and the samples in chunks whose sizes depend on `--batch`, the device and
memory. Drawing z ~ q(z|x) from one sequential generator would make a point's samples depend on which
chunk it fell in, so NLL-k would change with `--batch`. Instead, inside `block(seed, first_point,
first_sample)` every draw of noise.rsample is counter-based: the uniform behind coordinate c of sample
s of point p, in the t-th draw of the block (a hierarchy draws layer by layer), is

    u = U(split(split(split(split(seed, t), p), s), c))      split(key, i) = mix64(key + (i + 1) * GAMMA)

with SplitMix64's golden-ratio increment GAMMA and finaliser mix64 (Steele, Lea & Flood 2014; the
generator of java.util.SplittableRandom, which passes BigCrush), and U the top 53 bits as a float64 in
(0, 1). A draw is q's inverse CDF at u (Normal, Laplace, Gumbel, the logistic family), so every chunking,
CPU or GPU, gives the same z for the same (seed, point, sample). Student-t (integer degrees of freedom
nu) takes nu + 1 normals per coordinate: t = n_0 / sqrt(sum_i n_i^2 / nu).

The arithmetic is int64 with two's-complement wrap-around (what every torch backend does; the tests
compare against exact Python integers) and logical shifts made from arithmetic ones by masking.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.distributions import Distribution, Independent, Normal, StudentT

GAMMA = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, odd: SplitMix64's increment
MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # SplitMix64's finaliser multipliers (Stafford's mix 13)
_U64 = (1 << 64) - 1


def _signed(v: int) -> int:
    """An unsigned 64-bit value as the int64 with the same bits."""
    v &= _U64
    return v - (1 << 64) if v >> 63 else v


def _shr(z: torch.Tensor, n: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic: mask the copied sign bits away)."""
    return (z >> n) & ((1 << (64 - n)) - 1)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 bit patterns, in place (multiplication wraps modulo 2^64)."""
    for shift, multiplier in zip((30, 27), MIX):
        z.bitwise_xor_(_shr(z, shift)).mul_(_signed(multiplier))
    return z.bitwise_xor_(_shr(z, 31))


def split(key: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """A key for sub-stream `index` of `key` (broadcast): mix64(key + (index + 1) * GAMMA)."""
    return mix64(key + (index + 1) * _signed(GAMMA))


def split_int(key: int, index: int) -> int:
    """split() on Python integers (unsigned 64-bit values), for the block's scalar keys."""
    z = (key + (index + 1) * GAMMA) & _U64
    for shift, multiplier in zip((30, 27), MIX):
        z = ((z ^ (z >> shift)) * multiplier) & _U64
    return z ^ (z >> 31)


def uniform(bits: torch.Tensor) -> torch.Tensor:
    """The top 53 bits as float64 in (0, 1): (m + 1/2) / 2^53, never 0 or 1."""
    return _shr(bits, 11).double().add_(0.5).mul_(2.0 ** -53)


@dataclass
class Block:
    """Points first_point.. and samples first_sample.. of one evaluation chunk, under `seed`."""

    seed: int
    first_point: int
    first_sample: int
    draws: int = 0  # draws made in this block so far: the t of the next one


_BLOCK: ContextVar[Block | None] = ContextVar("vaelab_stream_block", default=None)


@contextmanager
def block(seed: int, first_point: int, first_sample: int) -> Iterator[None]:
    """Within the block, noise.rsample draws for points first_point.. and samples first_sample.. from the
    counter-based streams, whatever the chunk's size."""
    token = _BLOCK.set(Block(seed, first_point, first_sample))
    try:
        yield
    finally:
        _BLOCK.reset(token)


def current() -> Block | None:
    """The active block, or None (then draws come from torch's generator, as in training)."""
    return _BLOCK.get()


def uniforms(b: Block, shape: torch.Size, per_coordinate: int, device: torch.device) -> torch.Tensor:
    """(samples, points, C * per_coordinate) float64 uniforms for a (samples, points, ...) draw of b, C the
    trailing size: the next draw's stream."""
    t, b.draws = b.draws, b.draws + 1
    k, n = shape[0], shape[1]
    coordinates = shape[2:].numel() * per_coordinate

    def index(first: int, count: int) -> torch.Tensor:
        return torch.arange(first, first + count, device=device, dtype=torch.int64)

    key = torch.tensor(_signed(split_int(b.seed, t)), device=device)
    key = split(key, index(b.first_point, n))  # (points,)
    key = split(key[None, :], index(b.first_sample, k)[:, None])  # (samples, points)
    return uniform(split(key[..., None], index(0, coordinates)))  # (samples, points, coordinates)


def draw(q: Distribution, k: int | None) -> torch.Tensor:
    """k draws from q, (k, points, *event), or with k None one draw per element of q's (samples, points)
    batch; from the active block's streams, by q's inverse CDF."""
    b = current()
    shape = q.batch_shape + q.event_shape if k is None else torch.Size((k,)) + q.batch_shape + q.event_shape
    base = q.base_dist if isinstance(q, Independent) else q
    like = base.mean if not isinstance(base, StudentT) else base.loc
    if isinstance(base, Normal):  # the common case, in place: loc + scale * sqrt(2) erfinv(2u - 1)
        eps = uniforms(b, shape, 1, like.device).reshape(shape).mul_(2).sub_(1).erfinv_().mul_(math.sqrt(2))
        return base.loc + base.scale * eps.to(like.dtype)
    if isinstance(base, StudentT):
        nu = base.df.flatten()[0].item()
        if not (float(nu).is_integer() and bool((base.df == nu).all())):
            raise ValueError("per-point noise draws Student-t from nu + 1 normals: nu must be one integer")
        nu = int(nu)
        normal = torch.special.ndtri(uniforms(b, shape, nu + 1, like.device)).reshape(*shape, nu + 1)
        t = normal[..., 0] / (normal[..., 1:].square().sum(-1) / nu).sqrt()
        return base.loc + base.scale * t.to(like.dtype)
    try:
        u = uniforms(b, shape, 1, like.device).reshape(shape)
        return base.icdf(u).to(like.dtype)
    except NotImplementedError:
        raise ValueError(f"per-point noise draws by the inverse CDF, which {type(base).__name__} lacks") from None
