"""ELBO and IWAE-k of a one-layer model computed from its distributions alone, to check vaelab's numbers against.

No vaelab estimator code (objectives, evaluation, epochs): z ~ q(z|x) is drawn here with its own generator
and seeds (7919, 7920) that none of vaelab's fixed streams use (evaluation's 0, validation's 1234), and
log w = log p(x|z) + log p(z) - log q(z|x) is formed from the model's torch.distributions objects.
Two independent draws give the Monte-Carlo error, so a reported mean can be held to a stated tolerance:
4 standard errors of the difference between two independent estimates over the same points, plus 1e-3 nats
for float32 arithmetic in the networks (compare with numbers evaluated in fp32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class ByHand:
    elbo: torch.Tensor  # (N,) float64: mean of the k log-weights of each point
    iwae: torch.Tensor  # (N,) float64: log mean exp of the same k log-weights
    elbo_tol: float  # 4 standard errors of the difference of two independent estimates of the mean ELBO
    iwae_tol: float


@torch.no_grad()
def log_weights(model: torch.nn.Module, x: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """(k, N) float64 log w for a model with a Gaussian q(z|x) = encode(x) and one latent layer."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    q = model.encode(x)
    z = q.mean + q.stddev * torch.randn((k, *q.mean.shape), generator=g)  # (k, N, Dz)
    return model.decode(z).log_prob(x).double() + model.prior().log_prob(z).double() - q.log_prob(z).double()


def bounds(model: torch.nn.Module, x: torch.Tensor, k: int, seed: int = 7919) -> ByHand:
    """Per-point ELBO and IWAE-k from k draws, with tolerances from a second, independent set of k draws."""
    a, b = log_weights(model, x, k, seed), log_weights(model, x, k, seed + 1)
    iwae_a, iwae_b = (torch.logsumexp(w, 0) - math.log(k) for w in (a, b))
    n = x.shape[0]
    tol = lambda d: 4 * float(d.std()) / math.sqrt(n) + 1e-3  # noqa: E731 (d: per-point difference of two estimates)
    return ByHand(a.mean(0), iwae_a, tol(a.mean(0) - b.mean(0)), tol(iwae_a - iwae_b))


@torch.no_grad()
def reconstruction(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N,) log p(x | z = f(x)) of an autoencoder: deterministic."""
    model.eval()
    return model.decode(model.embed(x)).log_prob(x).double()
