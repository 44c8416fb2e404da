"""The hierarchical VAE: L >= 2 stochastic layers, generated top-down and inferred top-down.

Design (Tomczak & Welling 2018, "VAE with a VampPrior", §3.2), shown for two layers:
    p(x, z1, z2) = p(z2) p(z1 | z2) p(x | z1, z2)       generative model
    q(z1, z2 | x) = q(z2 | x) q(z1 | x, z2)             inference model, top layer first
and for L layers p(zL) prod_l p(z_l | z_l+1) p(x | z_1..L), q(zL | x) prod_l q(z_l | x, z_l+1).
Why this rather than the IWAE paper's bottom-up q(z1|x) q(z2|z1), p(x|z1):
  - the top layer's posterior q(zL|x) is one network away from x, so a prior made of posteriors
    (the VampPrior, vamp.py: a mixture of q(zL | u_k)) has an exact density; the bottom-up
    q(z2|x) = integral q(z2|z1) q(z1|x) dz1 has none;
  - the decoder reads every layer (a skip connection from the top), which Tomczak & Welling use to
    keep the top layer's units active;
  - it is the model of the published HVAE and HVAE + VampPrior rows (Tomczak & Welling's Table 2).
Each conditional is a diagonal Gaussian from an MLP with the run's hidden sizes (HVAE.mlp); q(z_l | x, z_l+1)
reads x and z_l+1 through JointMLP, so x's first layer is computed once per example, not per sample.
HVAE.conv (--model conv-hvae) reads x with gated convolutions in every posterior and decodes with gated
transposed convolutions (models/gated_conv.py, after Tomczak & Welling's convHVAE), for images whose sides divide by 4.
z is packed bottom first, (..., D1 + ... + DL): decode reads all of it, so the plots (latent
scatter, manifold, interpolation) work on the whole packed code; embed(x) gives the posterior means
down the mean path (the top layer's exactly, each lower layer's at its parent's mean).
Per-layer numbers (evaluate.layer_bounds): KL_l = E_q[log q(z_l|.) - log p(z_l|.)] by Monte Carlo,
active units from embed's per-layer means.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, constraints

from ..distributions import densities as dist
from ..runtime import split_noise
from . import priors
from .contract import LatentVariableModel, as_rows
from .gated_conv import GatedConvDecoder, GatedConvEncoder
from .networks import MLP, JointMLP


class HierarchicalPrior(Distribution):
    """p(z1, ..., zL) over the packed z: log_prob sums every layer's term, sample is ancestral."""

    arg_constraints: dict = {}
    support = constraints.real_vector

    def __init__(self, model: "HVAE"):
        self.model = model
        super().__init__(torch.Size(), torch.Size([model.latent_dim]), validate_args=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.log_prior(z)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        n = int(torch.Size(sample_shape).numel())
        return self.model.sample_latent(n).reshape(*sample_shape, self.model.latent_dim)


class ConvJoint(nn.Module):
    """q(z_i | x, z_i+1)'s network for images: gated conv features of x, joined with z_i+1 in a JointMLP."""

    def __init__(self, shape: tuple[int, ...], d_b: int, hidden: tuple[int, ...], d_out: int, features: int = 256):
        super().__init__()
        self.x, self.joint = GatedConvEncoder(shape, features), JointMLP(features, d_b, hidden, d_out)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.joint(torch.relu(self.x(x)), z)


class HVAE(LatentVariableModel):
    """sizes = (D1, ..., DL), bottom first; the prior module (PRIORS, e.g. the VampPrior) is p(zL)."""

    def __init__(self, encoder: nn.Module, q_nets: list[nn.Module], p_nets: list[nn.Module], decoder: nn.Module, *,
                 data_dim: int, sizes: tuple[int, ...], likelihood: str = "bernoulli", posterior_scale: str = "exp",
                 prior: str | nn.Module = "normal"):
        super().__init__()
        if len(sizes) < 2 or len(q_nets) != len(sizes) - 1 or len(p_nets) != len(sizes) - 1:
            raise ValueError("a hierarchical VAE needs two or more latent layers, and networks for each")
        self.data_dim, self.sizes, self.latent_dim = data_dim, tuple(sizes), sum(sizes)
        self.likelihood, self.posterior_scale = likelihood, posterior_scale
        self.encoder = encoder  # x -> q(zL | x), (..., 2 DL)
        self.q_nets = nn.ModuleList(q_nets)  # (x, z_i+1) -> q(z_i | x, z_i+1), (..., 2 Di)
        self.p_nets = nn.ModuleList(p_nets)  # z_i+1 -> p(z_i | z_i+1), (..., 2 Di)
        self.decoder = decoder  # packed z -> p(x | z_1..L)
        self.logvar = nn.Parameter(torch.zeros(data_dim)) if likelihood == "gaussian-learned" else None
        self.latent_prior = priors.build(prior, sizes[-1], data_dim) if isinstance(prior, str) else prior

    @classmethod
    def mlp(cls, shape: tuple[int, ...], sizes: tuple[int, ...], hidden: tuple[int, ...], **kw) -> "HVAE":
        """Every network an MLP with the given hidden sizes (the decoder's reversed)."""
        d, below = math.prod(shape), range(len(sizes) - 1)
        return cls(MLP(d, hidden, 2 * sizes[-1]), [JointMLP(d, sizes[i + 1], hidden, 2 * sizes[i]) for i in below],
                   [MLP(sizes[i + 1], hidden, 2 * sizes[i]) for i in below],
                   MLP(sum(sizes), tuple(reversed(hidden)), d), data_dim=d, sizes=sizes, **kw)

    @classmethod
    def conv(cls, shape: tuple[int, ...], sizes: tuple[int, ...], hidden: tuple[int, ...], **kw) -> "HVAE":
        """Gated conv encoders for x in every posterior, a gated transposed-conv decoder; MLPs between layers."""
        d, below = math.prod(shape), range(len(sizes) - 1)
        q_nets = [ConvJoint(shape, sizes[i + 1], hidden, 2 * sizes[i]) for i in below]
        model = cls(GatedConvEncoder(shape, 2 * sizes[-1]), q_nets,
                    [MLP(sizes[i + 1], hidden, 2 * sizes[i]) for i in below],
                    GatedConvDecoder(sum(sizes), shape), data_dim=d, sizes=sizes, **kw)
        model.activation_width = 64 * d  # the full-size gated layers: 2 x 32 channels per pixel (evaluate's chunks)
        return model

    def _gaussian(self, raw: torch.Tensor) -> Distribution:
        return dist.gaussian_posterior(raw.float(), self.posterior_scale)

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(zL | x), the top layer's posterior (the first one drawn)."""
        return self._gaussian(self.encoder(as_rows(self, x)))

    def top_prior(self) -> Distribution:
        """p(zL), the model's prior module."""
        return self.latent_prior(self)

    def conditional(self, i: int, parent: torch.Tensor) -> Distribution:
        """p(z_i | z_i+1) (0-based i), batch shape parent's leading dimensions."""
        return self._gaussian(self.p_nets[i](parent))

    def split(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The packed z as its layers, bottom first."""
        return list(z.split(self.sizes, -1))

    def posterior_sample(self, x: torch.Tensor, k: int, q: Distribution | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """z ~ q(zL|x) prod q(z_i | x, z_i+1), packed (K, B, D1+...+DL), and log q (K, B)."""
        q = self.encode(x) if q is None else q
        z = [None] * len(self.sizes)
        z[-1] = split_noise.rsample(q, k)  # (K, B, DL)
        log_q = q.log_prob(z[-1])
        for i in reversed(range(len(self.sizes) - 1)):
            qi = self._gaussian(self.q_nets[i](x, z[i + 1]))  # batch (K, B)
            z[i] = split_noise.rsample_each(qi)
            log_q = log_q + qi.log_prob(z[i])
        return torch.cat(z, -1), log_q

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(zL) + sum_i log p(z_i | z_i+1), (K, B)."""
        zs = self.split(z)
        lp = self.top_prior().log_prob(zs[-1])
        for i in range(len(self.sizes) - 1):
            lp = lp + self.conditional(i, zs[i + 1]).log_prob(zs[i])
        return lp

    def layer_terms(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per layer (z1 bottom ... zL top): log q(z_l | .) - log p(z_l | .), (K, B); their mean over q is KL_l."""
        zs = self.split(z)
        out = {f"z{len(zs)}": self.encode(x).log_prob(zs[-1]) - self.top_prior().log_prob(zs[-1])}
        for i in reversed(range(len(zs) - 1)):
            log_q = self._gaussian(self.q_nets[i](x, zs[i + 1])).log_prob(zs[i])
            out[f"z{i + 1}"] = log_q - self.conditional(i, zs[i + 1]).log_prob(zs[i])
        return dict(sorted(out.items(), key=lambda kv: int(kv[0][1:])))

    def analytic_kl(self, q: Distribution) -> None:
        return None  # the KL of a hierarchy is Monte Carlo (SGVB-B runs as SGVB-A)

    def prior(self) -> Distribution:
        """p(z) over the packed z (HierarchicalPrior)."""
        return HierarchicalPrior(self)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x | z_1..L) for the packed z (..., D1+...+DL)."""
        return dist.likelihood(self.likelihood, self.decoder(z).float(), self.logvar)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral draws zL ~ p(zL), z_i ~ p(z_i | z_i+1), packed (n, D1+...+DL)."""
        z = [None] * len(self.sizes)
        z[-1] = priors.draw(self.top_prior(), n, generator)
        for i in reversed(range(len(self.sizes) - 1)):
            z[i] = priors.draw(self.conditional(i, z[i + 1]), 1, generator)[0]
        return torch.cat(z, -1)

    def latent_quantiles(self, p: torch.Tensor) -> None:
        return None  # p(z1) is a continuous mixture: the manifold grid uses the aggregate posterior

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means down the mean path, packed (B, D1+...+DL)."""
        x = as_rows(self, x)
        z = [None] * len(self.sizes)
        z[-1] = self.encode(x).mean
        for i in reversed(range(len(self.sizes) - 1)):
            z[i] = self._gaussian(self.q_nets[i](x, z[i + 1])).mean
        return torch.cat(z, -1)
