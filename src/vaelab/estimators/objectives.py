"""Estimators of the evidence lower bound and its relatives. Pure functions of (model, x).

Each returns a Bound: `value` is the per-example number that gets reported (nats, summed over
data dimensions), `loss` is the scalar that gets differentiated. They differ only where a
training device (KL warm-up) changes the loss; the reported value is always the true bound.

Shapes: x (B, D); z (K, B, Dz); log weights (K, B). Sample dimension first.
They ask the model only what models/contract.py promises (posterior_sample, log_likelihood,
log_prior, analytic_kl), so a model with several stochastic layers or a learned prior needs no change here.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import nn
from torch.distributions import kl_divergence

from ..runtime import split_noise


class Bound(NamedTuple):
    loss: torch.Tensor  # scalar to minimise
    value: torch.Tensor  # (B,) the bound per example, in nats
    terms: dict[str, torch.Tensor]  # (B,) parts of the bound, detached


def log_weights(model: nn.Module, x: torch.Tensor, k: int, q=None):
    """Draw z_k ~ q(z|x) by reparameterisation; return q, log p(x|z_k) and log p(z_k) - log q(z_k|x).

    log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), the importance weight of AEVB / IWAE, with
    p(z) and q(z|x) over every stochastic layer of the model. Pass q to reuse an encoder pass when
    drawing samples in chunks.
    """
    q = model.encode(x) if q is None else q
    z, log_q = model.posterior_sample(x, k, q)  # (K, B, ...), (K, B)
    log_px_z = model.log_likelihood(x, z)  # (K, B)
    log_prior_ratio = model.log_prior(z) - log_q  # (K, B)
    return q, log_px_z, log_prior_ratio


def sgvb_b(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """SGVB-B (AEVB eq. 7): ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)), KL in closed form.

    The reconstruction term is averaged over k reparameterised samples.
    """
    q = model.encode(x)
    kl = model.analytic_kl(q)
    if kl is None:  # no closed form for this model: the all-Monte-Carlo estimator is the honest fallback
        return sgvb_a(model, x, k, beta)
    z = split_noise.rsample(q, k)  # (K, B, Dz): a closed-form KL means q is the whole posterior (models/contract.py)
    recon = model.log_likelihood(x, z).mean(0)  # (B,)
    value = recon - kl
    loss = -value.mean() if beta == 1.0 else -(recon - beta * kl).mean()
    free_bits = getattr(model, "free_bits", 0.0)
    if free_bits:  # Kingma et al. 2016 (IAF, eq. 15): charge each dimension's batch-mean KL at least free_bits
        per_dim = kl_divergence(q.base_dist, model.prior().base_dist).mean(0)  # (Dz,)
        loss = -recon.mean() + beta * per_dim.clamp(min=free_bits).sum()
    return Bound(loss, value.detach(), {"recon": recon.detach(), "kl": kl.detach()})


def sgvb_a(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """SGVB-A (AEVB eq. 6): ELBO ~ mean_k [log p(x, z_k) - log q(z_k|x)], everything Monte Carlo."""
    _, log_px_z, ratio = log_weights(model, x, k)
    recon, kl = log_px_z.mean(0), -ratio.mean(0)  # kl is the Monte-Carlo KL estimate
    value = recon - kl
    loss = -(recon - beta * kl).mean()
    return Bound(loss, value.detach(), {"recon": recon.detach(), "kl": kl.detach()})


def iwae(model: nn.Module, x: torch.Tensor, k: int = 5, beta: float = 1.0) -> Bound:
    """IWAE bound (Burda et al. 2016, IWAE): log (1/K) sum_k w_k, computed with logsumexp.

    At k=1 it is exactly the single-sample SGVB-A estimate, so its expectation is the ELBO.
    The loss is the negative bound itself (with beta scaling the prior ratio during warm-up).
    """
    _, log_px_z, ratio = log_weights(model, x, k)
    log_k = math.log(k)
    value = torch.logsumexp(log_px_z + ratio, 0) - log_k  # (B,)
    train = value if beta == 1.0 else torch.logsumexp(log_px_z + beta * ratio, 0) - log_k
    terms = {"recon": log_px_z.mean(0).detach(), "kl": -ratio.mean(0).detach()}
    return Bound(-train.mean(), value.detach(), terms)


def ae(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """Plain autoencoder: log p(x | z = f(x)). A reconstruction score, not a bound on log p(x)."""
    recon = model.decode(model.embed(x)).log_prob(x)  # (B,)
    return Bound(-recon.mean(), recon.detach(), {"recon": recon.detach()})


def dae(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """Denoising autoencoder (Vincent et al. 2008): log p(x | z = f(x~)), x~ ~ q_D(x~|x), scored against the CLEAN x."""
    recon = model.decode(model.embed(model.corrupt(x))).log_prob(x)  # (B,)
    return Bound(-recon.mean(), recon.detach(), {"recon": recon.detach()})


def vq(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """VQ-VAE (van den Oord et al. 2017, eq. 3): log p(x | z_q(x)), a reconstruction score, not a bound.

    The loss adds the commitment term beta_c sum_ij ||z_e - sg(z_q)||^2 (model.commitment); the codebook itself
    moves by EMA inside model.quantize in training, and z_q passes the decoder's gradient to z_e unchanged.
    """
    q = model.quantize(x)
    recon = model.decode_grid(q.z).log_prob(x)  # (B,)
    loss = -(recon - model.commitment * q.commitment).mean()
    return Bound(loss, recon.detach(), {"recon": recon.detach(), "commitment": q.commitment.detach()})


def exact(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """An exact-likelihood model (PixelCNN, van den Oord et al. 2016): log p(x) = sum_i log p(x_i | x_<i),
    no latent, no bound.

    k and beta are ignored: nothing is sampled and there is no KL to warm up.
    """
    log_px = model.log_prob(x)  # (B,)
    return Bound(-log_px.mean(), log_px.detach(), {})


OBJECTIVES: dict[str, Callable[..., Bound]] = {
    "sgvb-b": sgvb_b,
    "sgvb-a": sgvb_a,
    "iwae": iwae,
    "ae": ae,
    "dae": dae,
    "exact": exact,
    "vq": vq,
}


def get(name: str) -> Callable[..., Bound]:
    """Objective by config name."""
    return OBJECTIVES[name]
