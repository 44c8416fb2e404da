"""Priors p(z): nn.Modules returning a torch Distribution (so a prior may hold parameters), and the registry.

A prior is built as PRIORS[kind](latent_dim, data_dim) and called as prior(model) by the model
that owns it, so a learned prior may use the model's own networks (a VampPrior encodes its
pseudo-inputs with model.encode). Adding one is a class (here or in its own file) and one line
in PRIORS (the CLI reads its keys: config/choices.py). `draw` and `quantiles` work on
any Distribution, so sampling and the manifold grid need nothing from a new prior.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Laplace, Normal

from .dirichlet import DirichletLaplace
from .vamp import VampPrior

_CHECK = dict(validate_args=False)  # no per-call argument checks in the training loop


class StandardNormal(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int, data_dim: int = 0):
        super().__init__()
        # buffers follow the model across devices but are not weights to save
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    def forward(self, model: nn.Module | None = None) -> Distribution:
        return Independent(Normal(self.loc, self.scale, **_CHECK), 1, **_CHECK)


class StandardLaplace(StandardNormal):
    """p(z) = prod_i Laplace(z_i; 0, 1), density exp(-|z_i|) / 2."""

    def forward(self, model: nn.Module | None = None) -> Distribution:
        return Independent(Laplace(self.loc, self.scale, **_CHECK), 1, **_CHECK)


# the one list of prior names: the CLI reads these keys from this source (config/choices.py), so they stay literals
PRIORS: dict[str, Callable[..., nn.Module]] = {
    "normal": StandardNormal,
    "laplace": StandardLaplace,
    "dirichlet-laplace": DirichletLaplace,  # alpha = 1 here; models built from a config pass its alpha
    "vamp": VampPrior,
}


def build(kind: str, latent_dim: int, data_dim: int, **options: Any) -> nn.Module:
    """The registered prior `kind` over a latent_dim-dimensional z, for a model of data_dim-dimensional x.

    options (e.g. pseudo_inputs) go to the priors whose constructor names them; the others ignore them.
    """
    if kind not in PRIORS:
        raise ValueError(f"unknown prior {kind!r} (choose from {', '.join(PRIORS)})")
    names = inspect.signature(PRIORS[kind]).parameters
    return PRIORS[kind](latent_dim, data_dim, **{k: v for k, v in options.items() if k in names})


def _base(p: Distribution) -> Distribution:
    return p.base_dist if isinstance(p, Independent) else p


def draw(p: Distribution, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n draws from p, (n, *batch, *event); from `generator` (a CPU one) when given.

    torch.distributions take no generator, so a Normal is drawn as loc + scale * randn (the same
    numbers as before priors were modules) and anything else under the global RNG, seeded from
    the generator inside a fork, so the caller's RNG stream is left as it was.
    """
    if generator is None:
        return p.sample((n,))
    base = _base(p)
    if type(base) is Normal:
        eps = torch.randn((n, *p.batch_shape, *p.event_shape), generator=generator).to(base.loc.device)
        return base.loc + base.scale * eps
    device = p.mean.device
    seed = int(torch.randint(2 ** 62, (), generator=generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return p.sample((n,))


def quantiles(p: Distribution, probs: torch.Tensor) -> torch.Tensor | None:
    """p's inverse CDF per latent dimension at probs (N,), (N, Dz);
    None unless p factorises and torch knows its icdf."""
    base = _base(p)
    if base.batch_shape != p.event_shape or len(p.event_shape) != 1:
        return None  # not a product of 1-D distributions over the latent dimensions
    try:
        return base.icdf(probs.to(base.mean)[:, None])
    except (NotImplementedError, AttributeError):
        return None
