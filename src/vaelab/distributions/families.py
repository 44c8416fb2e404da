"""Reparameterisable posterior families (Kingma & Welling 2014, the reparameterisation trick), all torch.distributions
objects.

Each posterior is a location-scale family whose `rsample` is a differentiable function of
(loc, scale) and parameter-free noise:
    gaussian   z = loc + scale * eps,             eps ~ N(0, 1)
    laplace    z = loc + scale * eps,             eps ~ Laplace(0, 1)
    logistic   z = loc + scale * logit(u),        u ~ U(0, 1)   (the inverse-CDF route)
    student-t  z = loc + scale * x / sqrt(c/nu),  x ~ N(0, 1), c ~ Chi2(nu)
    gumbel     z = loc - scale * log(-log u),     u ~ U(0, 1)   (the inverse-CDF route)
Every one is wrapped in `Independent`, so log_prob sums over the latent dimensions.

Whether KL(q || p) has a closed form is left to `torch.distributions.kl_divergence`; the
objectives fall back to the Monte-Carlo KL (SGVB-A) when it raises NotImplementedError. The priors p(z)
are the models' own (models/priors.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.distributions import (
    AffineTransform,
    Distribution,
    Gumbel,
    Independent,
    Laplace,
    Normal,
    SigmoidTransform,
    StudentT,
    TransformedDistribution,
    Uniform,
    constraints,
)
from torch.distributions.kl import kl_divergence

from .densities import SCALE_FNS

STUDENT_DF = 5.0  # fixed degrees of freedom: heavier tails than a Gaussian, finite mean and variance

_CHECK = dict(validate_args=False)  # no per-call argument checks in the training loop


class Logistic(TransformedDistribution):
    """Logistic(loc, scale): logit of a uniform draw, shifted and scaled. rsample is the inverse CDF.

    torch has no Logistic class; this is torch's own building blocks (Uniform, SigmoidTransform,
    AffineTransform). SigmoidTransform clamps u away from 0 and 1, so samples and densities stay finite.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = False):
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        base = Uniform(torch.zeros_like(self.loc), torch.ones_like(self.loc), validate_args=False)
        super().__init__(base, [SigmoidTransform().inv, AffineTransform(self.loc, self.scale)],
                         validate_args=validate_args)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        return self.scale.pow(2) * (math.pi ** 2 / 3)

    def entropy(self) -> torch.Tensor:
        return torch.log(self.scale) + 2.0


def _student_t(loc: torch.Tensor, scale: torch.Tensor) -> StudentT:
    return StudentT(torch.full_like(loc, STUDENT_DF), loc, scale, **_CHECK)


# the posterior families, name -> (torch class, constructor from location and scale tensors); the config's and the
# CLI's list of names (config/choices.py reads the keys): a new family is one entry here
POSTERIORS: dict[str, tuple[type[Distribution], Callable[[torch.Tensor, torch.Tensor], Distribution]]] = {
    "gaussian": (Normal, lambda loc, scale: Normal(loc, scale, **_CHECK)),
    "laplace": (Laplace, lambda loc, scale: Laplace(loc, scale, **_CHECK)),
    "logistic": (Logistic, Logistic),
    "student-t": (StudentT, _student_t),
    "gumbel": (Gumbel, lambda loc, scale: Gumbel(loc, scale, **_CHECK)),
}


def location_scale(kind: str, loc: torch.Tensor, scale: torch.Tensor) -> Distribution:
    """One family over the last dimension (event), from location and positive scale tensors."""
    if kind not in POSTERIORS:
        raise ValueError(f"unknown posterior family {kind!r} (choose from {', '.join(POSTERIORS)})")
    return Independent(POSTERIORS[kind][1](loc, scale), 1, **_CHECK)


def posterior(kind: str, raw: torch.Tensor, scale: str = "exp") -> Distribution:
    """q(z|x) of a family from raw (..., 2*Dz) encoder output: [location, scale pre-activation]."""
    loc, h = raw.chunk(2, dim=-1)
    return location_scale(kind, loc, SCALE_FNS[scale](h))


def loc_scale(q: Distribution) -> tuple[torch.Tensor, torch.Tensor]:
    """The (location, scale) tensors a posterior built here was made from."""
    base = q.base_dist if isinstance(q, Independent) else q
    return base.loc, base.scale


def family_of(q: Distribution) -> str:
    """The family name of a posterior built by location_scale."""
    base = q.base_dist if isinstance(q, Independent) else q
    for kind, (cls, _) in POSTERIORS.items():
        if isinstance(base, cls):
            return kind
    raise ValueError(f"not a vaelab posterior family: {type(base).__name__}")


def has_analytic_kl(posterior_kind: str, p: Distribution) -> bool:
    """True when torch.distributions knows KL(q || p) in closed form for a q of this family and the prior p (Dz,)."""
    one = torch.ones(p.event_shape, dtype=p.mean.dtype, device=p.mean.device)
    try:
        kl_divergence(location_scale(posterior_kind, 0 * one, one + 1), p)
    except NotImplementedError:
        return False
    return True
