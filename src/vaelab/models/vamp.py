"""The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k) at K learned pseudo-inputs u_k.

The prior is the model's own encoder evaluated at pseudo-inputs that are trained with the rest
(eq. 9 of the paper), so its density is exact in every bound:
    log p(z) = logsumexp_k log q(z | u_k) - log K            (torch's MixtureSameFamily)
There is no closed-form KL(q(z|x) || p(z)), so SGVB-B falls back to the Monte-Carlo KL (SGVB-A).
Sampling draws a component k uniformly, then z ~ q(z | u_k).
The density of diagonal-Gaussian components is computed as one matrix product (EqualGaussianMixture):
    -2 log N(z; m_k, s_k) = z^2 . (1/s_k^2) - 2 z . (m_k/s_k^2) + sum m_k^2/s_k^2 + 2 sum log s_k + D log 2 pi
in float64, rather than torch's broadcast over (samples, points, K, D), which is ~30x slower at K = 500.

The module asks `model.encode`, so it serves any model with an encoder: for the VAE it is the prior
of its one layer; for the HVAE (hvae.py) encode is q(z_top | x), so it is the prior of the top layer;
with a flow posterior (flow_vae.py) the components are the Gaussian base q0(z | u_k), because a
planar or IAF flow's density at an arbitrary z would need the flow's inverse.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ..data.images import rows

INIT_NOISE = 0.01  # spread of the pseudo-inputs around the examples they start from


class EqualGaussianMixture(MixtureSameFamily):
    """(1/K) sum_k N(m_k, diag s_k^2): MixtureSameFamily with the log-density as a float64 matrix product."""

    def __init__(self, components: Distribution):
        k = components.batch_shape[0]
        weights = Categorical(logits=torch.zeros(k, device=components.mean.device), validate_args=False)
        super().__init__(weights, components, validate_args=False)
        base = components.base_dist if isinstance(components, Independent) else None
        self._diagonal = isinstance(base, Normal) and components.reinterpreted_batch_ndims == 1

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if not self._diagonal:
            return super().log_prob(z)
        base = self.component_distribution.base_dist
        loc, scale = base.loc.double(), base.scale.double()  # (K, D)
        precision = scale.pow(-2)
        zz = z.double()  # (..., D)
        quad = zz.pow(2) @ precision.T - 2 * (zz @ (loc * precision).T) + (loc.pow(2) * precision).sum(-1)  # (..., K)
        log_norm = scale.log().sum(-1) + 0.5 * loc.shape[-1] * math.log(2 * math.pi)  # (K,)
        return (torch.logsumexp(-0.5 * quad - log_norm, -1) - math.log(loc.shape[0])).to(z.dtype)


class VampPrior(nn.Module):
    """K pseudo-inputs u (K, D), a parameter; forward(model) -> the mixture of model.encode(u)."""

    def __init__(self, latent_dim: int, data_dim: int, pseudo_inputs: int = 500):
        super().__init__()
        self.latent_dim = latent_dim
        # without data: near-grey images, the middle of [0, 1]; init_from_data replaces them
        self.pseudo = nn.Parameter(0.5 + INIT_NOISE * torch.randn(pseudo_inputs, data_dim))
        self.hold = False  # inside held(): compute the mixture once and keep it
        self._held: Distribution | None = None

    @torch.no_grad()
    def init_from_data(self, data) -> None:
        """Start the pseudo-inputs at K random training examples (scaled to [0, 1]) plus a little noise."""
        train = getattr(data, "train", None)
        if not isinstance(train, torch.Tensor) or train.layout != torch.strided or len(train) == 0:
            return  # streamed or sparse data: keep the grey start
        k, n = self.pseudo.shape[0], len(train)
        idx = torch.randperm(n)[:k] if k <= n else torch.randint(n, (k,))
        x = rows(train, idx, data.scale).reshape(k, -1)  # (K, D)
        self.pseudo.copy_(x.to(self.pseudo) + INIT_NOISE * torch.randn_like(self.pseudo))

    def forward(self, model: nn.Module) -> Distribution:
        if self._held is not None:
            return self._held
        mixture = EqualGaussianMixture(model.encode(self.pseudo))  # components: batch shape (K,), event (Dz,)
        if self.hold:
            self._held = mixture
        return mixture


@contextmanager
def held(model: nn.Module):
    """Inside, each VampPrior of `model` encodes its pseudo-inputs once and returns that mixture again.

    For evaluation, which asks for p(z) once per chunk of samples (NLL-5000: thousands of chunks, each
    re-encoding K pseudo-inputs); the weights must not change inside. On leaving, the mixture is dropped.
    """
    vamps = [m for m in model.modules() if isinstance(m, VampPrior)]
    for m in vamps:
        m.hold = True
    try:
        yield
    finally:
        for m in vamps:
            m.hold, m._held = False, None
