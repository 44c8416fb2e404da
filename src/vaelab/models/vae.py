"""The VAE: any encoder/decoder network pair around a posterior family, a likelihood and a registered prior."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from ..distributions import densities as dist
from ..distributions import families
from . import priors
from .contract import LatentVariableModel, as_rows


class VAE(LatentVariableModel):
    """q(z|x) from the encoder (a Gaussian or another distributions/families.py family), p(x|z) from the decoder,
    p(z) a prior module.

    The flat (MLP) and convolutional VAEs differ only in the networks they are given.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, data_dim: int, latent_dim: int,
                 likelihood: str = "bernoulli", posterior_scale: str = "exp", posterior: str = "gaussian",
                 prior: str | nn.Module = "normal"):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.likelihood, self.posterior_scale, self.posterior = likelihood, posterior_scale, posterior
        # one log-variance per data dimension, shared by all examples
        self.logvar = nn.Parameter(torch.zeros(data_dim)) if likelihood == "gaussian-learned" else None
        # registered after the networks, so a prior with parameters comes last in named_parameters
        self.latent_prior = priors.build(prior, latent_dim, data_dim) if isinstance(prior, str) else prior

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z|x): a diagonal Gaussian, or another location-scale family (distributions/families.py); x (..., D) or
        (B, C, H, W)."""
        return self.posterior_from(self.encoder(as_rows(self, x)).float())  # float: see ObjectiveStep

    def posterior_from(self, raw: torch.Tensor) -> Distribution:
        """q(z|x) from the encoder's raw output [location, scale pre-activation], (..., 2*Dz)."""
        if self.posterior == "gaussian":
            return dist.gaussian_posterior(raw, self.posterior_scale)
        return families.posterior(self.posterior, raw, self.posterior_scale)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for z of shape (..., Dz)."""
        return dist.likelihood(self.likelihood, self.decoder(z).float(), self.logvar)

    def prior(self) -> Distribution:
        """p(z), from the model's own prior module (priors.PRIORS)."""
        return self.latent_prior(self)
