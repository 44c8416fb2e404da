"""Deterministic autoencoders: a code z = f(x) and a decoder p(x|z); no posterior, no prior, no bound on log p(x).

They are not LatentVariableModels, so evaluation and plots treat them as reconstruction-only
(contract.is_latent_variable is False), and there is no encode or prior to refuse.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from ..distributions import corruption
from ..distributions import densities as dist
from .contract import as_rows, reconstruct


class AE(nn.Module):
    """Plain autoencoder: the code is a point, scored by log p(x | z = f(x))."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, data_dim: int, latent_dim: int,
                 likelihood: str = "bernoulli"):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.data_dim, self.latent_dim, self.likelihood = data_dim, latent_dim, likelihood
        self.logvar = nn.Parameter(torch.zeros(data_dim)) if likelihood == "gaussian-learned" else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f(x), (B, Dz); x (B, D) or in its natural shape."""
        return self.encoder(as_rows(self, x))

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for z of shape (..., Dz)."""
        return dist.likelihood(self.likelihood, self.decoder(z).float(), self.logvar)

    def reconstruct(self, x) -> torch.Tensor:
        """E[x | z = f(x)], shaped like x: (N, D) or (N, H, W), array or tensor."""
        return reconstruct(self, x)


class DAE(AE):
    """Denoising autoencoder (Vincent et al. 2008/2010): encodes a corrupted x~, is scored against the clean x."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, noise: corruption.Noise, **kw):
        super().__init__(encoder, decoder, **kw)
        self.noise = noise

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """x~ ~ q_D(x~ | x), from the global (seeded, checkpointed) RNG."""
        return self.noise(x)
