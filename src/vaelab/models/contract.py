"""The model contract: what estimators, evaluation, sampling and plots may ask of a latent-variable model.

A model owns p(x, z) = p(z) p(x|z) and an amortised q(z|x). Callers ask it, never rebuild it:
    encode(x)               -> q(z|x) of the first latent layer, a Distribution with batch shape (B,)
    posterior_sample(x, k)  -> (z, log q(z|x)): z (K, B, ...) from the WHOLE posterior, log q (K, B)
    log_likelihood(x, z)    -> log p(x|z), (K, B)
    log_prior(z)            -> log p(z) summed over every stochastic layer, (K, B)
    log_joint(x, z)         =  log_likelihood + log_prior
    analytic_kl(q)          -> KL(q(z|x) || p(z)) in closed form, (B,), or None (estimators use Monte Carlo)
    prior()                 -> p(z), a Distribution the model owns (it may have parameters)
    decode(z)               -> p(x|z)
    sample_latent(n, g)     -> n draws from the model's own prior; sample(n, g) -> the means of p(x|z) for them
    latent_quantiles(p)     -> the prior's inverse CDF per dimension at probabilities p (N,), (N, Dz), or None
    embed(x)                -> a point code per example (the posterior mean of the first layer), for plots
    reconstruct(x)          -> the mean of p(x|z) at z = embed(x), shaped like x (also on plain autoencoders)
    model(x)                -> Forward(mean, z, log_likelihood, kl, elbo, loss): one SGVB pass, for PyTorch code
encode, embed, reconstruct and model(x) also take examples in their natural shape, (B, C, H, W) or (B, H, W)
for one channel (as_rows); the estimators pass (B, D) rows.
z is whatever the model likes (one tensor, or several layers packed into one); only the model reads it.
The defaults below are the one-layer case: a model with more layers overrides posterior_sample,
log_prior, analytic_kl and sample_latent, and the estimators stay unchanged. Sample dimension first.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence

from ..errors import VaelabError
from ..runtime import split_noise
from . import priors


class Forward(NamedTuple):
    """What model(x) returns: one reparameterised draw z ~ q(z|x) and the single-sample ELBO at it, per example.

    mean:           E[x | z] shaped like x (None for an autoregressive decoder, whose mean has no closed form)
    z:              (B, ...) the draw (a hierarchy's layers packed on the last dimension)
    log_likelihood: (B,) log p(x|z), nats
    kl:             (B,) KL(q(z|x) || p(z)): closed form where the model has one, else log q(z|x) - log p(z) at z
    elbo:           (B,) log_likelihood - kl (SGVB-B, or SGVB-A without a closed-form KL; Kingma & Welling 2014)
    loss:           scalar -elbo.mean(), to call .backward() on
    """

    mean: torch.Tensor | None
    z: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor
    elbo: torch.Tensor
    loss: torch.Tensor


def as_rows(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x as the (..., D) rows the networks read: examples in their natural shape (B, C, H, W), or (B, H, W) for
    one channel, are flattened; (..., D) passes as it is. Any other shape is a VaelabError naming both."""
    d = model.data_dim
    if x.shape[-1:] == (d,) and x.dim() >= 1 and not _natural(model, x):
        return x
    if _natural(model, x):
        return x.reshape(len(x), d)
    shape = getattr(model, "data_shape", None)
    want = f"(B, {', '.join(map(str, shape))}) or (B, {d})" if shape else f"(B, {d})"
    raise VaelabError(f"x has shape {tuple(x.shape)}; this model reads examples shaped {want}")


def _natural(model: nn.Module, x: torch.Tensor) -> bool:
    """True for (B, *data_shape), or (B, H, W) when data_shape is (1, H, W)."""
    shape = tuple(getattr(model, "data_shape", None) or ())
    if len(shape) < 2:
        return False
    return tuple(x.shape[1:]) == shape or (shape[0] == 1 and tuple(x.shape[1:]) == shape[1:])


class LatentVariableModel(nn.Module):
    """Base of every model with a posterior and a prior; `data_dim` and `latent_dim` (the point code's width)
    are set by subclasses."""

    data_dim: int
    latent_dim: int
    # encode(x).mean is E_q[z] of the latent posterior_sample draws; False where q is more than encode's
    # distribution (a flow pushes it further), and evaluation then estimates E_q[z] by sampling
    mean_in_closed_form: bool = True

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z|x) of the first latent layer."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z), batch shape z's leading dimensions."""
        raise NotImplementedError

    def prior(self) -> Distribution:
        """p(z) of the latent that decode reads."""
        raise NotImplementedError

    def posterior_sample(self, x: torch.Tensor, k: int, q: Distribution | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """k reparameterised draws z ~ q(z|x) and their log q, (K, B, Dz) and (K, B); pass q to reuse encode(x)."""
        q = self.encode(x) if q is None else q
        z = split_noise.rsample(q, k)  # (K, B, Dz)
        return z, q.log_prob(z)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z), (K, B)."""
        return self.decode(z).log_prob(x)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), (K, B)."""
        return self.prior().log_prob(z)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(x|z) + log p(z), (K, B)."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def analytic_kl(self, q: Distribution) -> torch.Tensor | None:
        """KL(q || p(z)) per example when torch.distributions knows the pair, else None.

        Return a closed form only when q is the whole posterior (SGVB-B then draws z from q alone);
        a model with more layers returns None and is scored by Monte Carlo.
        """
        try:
            return kl_divergence(q, self.prior())
        except NotImplementedError:
            return None

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws z ~ p(z), the model's own prior, (n, Dz)."""
        return priors.draw(self.prior(), n, generator)

    def latent_quantiles(self, p: torch.Tensor) -> torch.Tensor | None:
        """The prior's per-dimension quantiles at probabilities p (N,), (N, Dz); None when it has no inverse CDF."""
        return priors.quantiles(self.prior(), p)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The means of p(x|z) for n draws z ~ p(z), the model's own prior, (n, D)."""
        if n < 1:
            raise VaelabError(f"n must be at least 1, not {n}")
        return self.decode(self.sample_latent(n, generator)).mean

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean E_q[z] of the first layer, (B, Dz)."""
        return self.encode(x).mean

    def forward(self, x: torch.Tensor) -> Forward:
        """One draw z ~ q(z|x) and the ELBO's terms at it (Forward), x (B, D) or in its natural shape."""
        flat = as_rows(self, x)
        q = self.encode(flat)
        kl = self.analytic_kl(q)  # a closed form only where q is the whole posterior (analytic_kl's contract)
        if kl is None:
            z, log_q = self.posterior_sample(flat, 1, q)  # (1, B, ...), (1, B)
            kl = (log_q - self.log_prior(z))[0]
        else:
            z = split_noise.rsample(q, 1)  # (1, B, Dz)
        log_px = self.log_likelihood(flat, z)[0]  # (B,)
        try:
            mean = self.decode(z).mean[0].reshape(x.shape)
        except (NotImplementedError, VaelabError):  # an autoregressive p(x|z) (PixelImage): no closed-form mean
            mean = None
        elbo = log_px - kl
        return Forward(mean, z[0], log_px, kl, elbo, -elbo.mean())

    def reconstruct(self, x) -> torch.Tensor:
        """E[x | z] at the posterior mean z = E_q[z|x], shaped like x: (N, D) or (N, H, W), array or tensor."""
        return reconstruct(self, x)


@torch.no_grad()
def reconstruct(model: nn.Module, x) -> torch.Tensor:
    """decode(embed(x)).mean for images (N, D) or (N, H, W) given as a NumPy array or tensor; same shape back."""
    param = next(model.parameters())
    x = torch.as_tensor(x).to(param.device, torch.float32)
    flat = x.reshape(len(x), -1)  # (N, D): what the networks read
    if flat.shape[1] != model.data_dim:
        raise VaelabError(f"x has {flat.shape[1]} values per example; this model reads {model.data_dim}")
    return model.decode(model.embed(flat)).mean.reshape(x.shape)


class ExactLikelihoodModel(nn.Module):
    """Base of a model with no latent whose log p(x) is computed exactly (an autoregressive model).

    log_prob(x) -> log p(x) per example, (B,); sample(n, g) -> n draws of x, (n, D). No bound and no k:
    the estimators, evaluation and compare report its exact NLL (objectives.exact, evaluate.summarize).
    """

    data_dim: int

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), (B,)."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws x ~ p(x), (n, D)."""
        raise NotImplementedError


def is_exact(model: object) -> bool:
    """True for a model whose log p(x) is exact (no posterior, no prior, no k)."""
    return isinstance(model, ExactLikelihoodModel)


def is_latent_variable(model: object) -> bool:
    """True for a model with a posterior and a prior (bounds, samples); False for reconstruction-only autoencoders."""
    return isinstance(model, LatentVariableModel)
