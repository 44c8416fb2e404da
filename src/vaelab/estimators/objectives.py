"""Estimators of the evidence lower bound and its relatives. Pure functions of (model, x).

Each returns a Bound: `value` is the per-example number that gets reported (nats, summed over
data dimensions), `loss` is the scalar that gets differentiated. They differ only where a
training device (KL warm-up, β-VAE's β, β-TCVAE's and FactorVAE's total-correlation weight) changes
the loss; the reported value is always the true bound. `beta` is the KL warm-up weight (1 when off);
a model's own `beta` (the config's, set by models.build) multiplies it (Higgins et al. 2017, β-VAE).

Shapes: x (B, D); z (K, B, Dz); log weights (K, B). Sample dimension first.
They ask the model only what models/contract.py promises (posterior_sample, log_likelihood,
log_prior, analytic_kl), so a model with several stochastic layers or a learned prior needs no change here.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, kl_divergence

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


def kl_weight(model: nn.Module, warmup: float) -> float:
    """The KL's weight in the loss: the warm-up weight times the model's β (β-VAE, Higgins et al. 2017; 1 if none)."""
    return warmup * getattr(model, "beta", 1.0)


def sgvb_b(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """SGVB-B (AEVB eq. 7): ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)), KL in closed form.

    The reconstruction term is averaged over k reparameterised samples.
    """
    beta = kl_weight(model, beta)
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
    beta = kl_weight(model, beta)
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
    beta = kl_weight(model, beta)
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


def _recon_kl(model: nn.Module, x: torch.Tensor, k: int):
    """q(z|x), z (K, B, Dz), E_q log p(x|z) (B,), KL (B,) (closed form where known, else Monte Carlo on z),
    log q(z|x) and log p(z) (K, B)."""
    q = model.encode(x)
    z = split_noise.rsample(q, k)  # (K, B, Dz)
    recon = model.log_likelihood(x, z).mean(0)  # (B,)
    log_qz_x, log_pz = q.log_prob(z), model.log_prior(z)  # (K, B)
    kl = model.analytic_kl(q)
    return q, z, recon, (log_qz_x - log_pz).mean(0) if kl is None else kl, log_qz_x, log_pz


def kl_decomposition(q: Distribution, z: torch.Tensor, log_qz_x: torch.Tensor, log_pz: torch.Tensor,
                     dataset_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chen et al. 2018 (β-TCVAE, eq. 2): KL(q(z|x) || p(z)) = index-code MI + total correlation + dimension-wise KL.

    Per sample z_i ~ q(z|x_i), with q(z) the aggregate posterior estimated on the batch by minibatch-weighted
    sampling (their eq. S8): log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(N M), N the dataset's size and M
    the batch's; log prod_d q(z_id) the same per dimension. q has batch shape (B,) and factorises over the
    Dz dimensions (q.base_dist, (B, Dz)); z (K, B, Dz), log_qz_x and log_pz (K, B). Returns (MI, TC, dim-KL),
    each (K, B): log q(z|x) - log q(z), log q(z) - log prod_d q(z_d), log prod_d q(z_d) - log p(z).
    """
    per_dim = q.base_dist.log_prob(z.unsqueeze(-2))  # (K, B, 1, Dz) against (B, Dz): [k, i, j, d] = log q(z_kid | x_j)
    log_nm = math.log(dataset_size * z.shape[-2])
    log_qz = torch.logsumexp(per_dim.sum(-1), -1) - log_nm  # (K, B)
    log_prod = (torch.logsumexp(per_dim, -2) - log_nm).sum(-1)  # (K, B)
    return log_qz_x - log_qz, log_qz - log_prod, log_prod - log_pz


def btcvae(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """β-TCVAE (Chen et al. 2018, eq. 4 with alpha = gamma = 1): the loss weighs the total correlation by the
    model's β; the reported value is the ELBO (as sgvb_b: the KL in closed form where known). `beta` is
    the KL warm-up weight, applied to all three parts. model.dataset_size is N (models.build sets it from the
    training data).
    """
    q, z, recon, kl, log_qz_x, log_pz = _recon_kl(model, x, k)
    n = getattr(model, "dataset_size", None) or len(x)  # unset (a model built without data): the batch is all
    mi, tc, dim_kl = (t.mean(0) for t in kl_decomposition(q, z, log_qz_x, log_pz, n))  # (B,)
    loss = -(recon - beta * (mi + getattr(model, "beta", 1.0) * tc + dim_kl)).mean()
    terms = {"recon": recon.detach(), "kl": kl.detach(), "mi": mi.detach(), "tc": tc.detach(),
             "dim_kl": dim_kl.detach()}
    return Bound(loss, (recon - kl).detach(), terms)


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Each latent dimension shuffled independently across the batch (Kim & Mnih 2018, Algorithm 1), z (K, B, Dz):
    draws from prod_d q(z_d) when z is drawn from q(z)."""
    order = torch.argsort(split_noise.uniform(z.shape, device=z.device, dtype=z.dtype), dim=-2)  # (K, B, Dz)
    return torch.gather(z, -2, order)


def factorvae(model: nn.Module, x: torch.Tensor, k: int = 1, beta: float = 1.0) -> Bound:
    """FactorVAE (Kim & Mnih 2018, eq. 2-3): ELBO - γ TC(z), TC(z) ~ log D(z) / (1 - D(z)) from a discriminator
    told apart samples of q(z) and of prod_d q(z_d) (permute_dims); γ is the model's β.

    One loss trains both: the VAE part reads the discriminator through detached weights (model.tc_logits(z,
    frozen=True)), the discriminator's cross-entropy reads detached z, so each gradient reaches only its own
    parameters; the model gives the discriminator its own Adam group (FactorVAE.param_groups). The reported
    value is the ELBO of every row; the discriminator's loss is in terms["discriminator"].

    As in their Algorithm 2, the discriminator sees q(z) samples of one batch as "joint" and the dimension-wise
    permuted samples of a second, independent batch as "permuted": here the batch's first B // 2 rows and its
    next B // 2 rows (an odd batch's last row trains only the VAE; a batch of one trains no discriminator).
    """
    _, z, recon, kl, _, _ = _recon_kl(model, x, k)
    logits = model.tc_logits(z, frozen=True)  # (K, B, 2): [real q(z), permuted prod_d q(z_d)]
    tc = (logits[..., 0] - logits[..., 1]).mean(0)  # (B,) the density-ratio estimate of TC
    half = z.shape[-2] // 2
    real, fake = z[..., :half, :].detach(), permute_dims(z[..., half:2 * half, :].detach())  # (K, B // 2, Dz) each
    both = model.tc_logits(torch.cat([real, fake], -2))  # (K, 2 (B // 2), 2)
    label = torch.cat([torch.zeros(real.shape[:-1]), torch.ones(fake.shape[:-1])], -1).long().to(z.device)
    d_loss = F.cross_entropy(both.reshape(-1, 2), label.reshape(-1)) if half else both.sum()  # no pair: 0
    loss = -(recon - beta * kl - getattr(model, "beta", 1.0) * tc).mean() + d_loss
    terms = {"recon": recon.detach(), "kl": kl.detach(), "tc": tc.detach(),
             "discriminator": d_loss.detach().expand(len(recon))}
    return Bound(loss, (recon - kl).detach(), terms)


# the objectives by name; the config's list of estimators (config/choices.py reads the keys): a new objective is
# its function and one entry here
OBJECTIVES: dict[str, Callable[..., Bound]] = {
    "sgvb-a": sgvb_a,
    "sgvb-b": sgvb_b,
    "iwae": iwae,
    "ae": ae,
    "dae": dae,
    "exact": exact,
    "vq": vq,
    "btcvae": btcvae,
    "factorvae": factorvae,
}
SURROGATES = ("btcvae", "factorvae")  # objectives whose loss is never the bound: train_objective is always logged


def get(name: str) -> Callable[..., Bound]:
    """Objective by config name."""
    return OBJECTIVES[name]
