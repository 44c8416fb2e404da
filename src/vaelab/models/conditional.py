"""The conditional VAE (Sohn et al. 2015, CVAE): the class label y enters the encoder and the decoder.

    q(z | x, y) = N(mu(x, y), sigma(x, y)^2),  p(z) = N(0, I) (the prior does not see y),  p(x | z, y)
so every bound it reports is a bound on log p(x | y), conditional on the label. The label travels with the
image: the model reads xy = [x, onehot(y)], (B, D + K), the K one-hot columns after the D values of the image
(runs/inputs.py packs them when `conditional` is set; dequantization's noise on them is rounded away).
z is (..., Dz) as in the VAE; log p(x | z, y) takes y from xy, so the estimators need no change. Decoding or
sampling names the labels: decode(z, y), sample(n, g, y) with y one-hot (n, K) or class numbers (n,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution

from ..distributions import densities as dist
from ..errors import VaelabError
from .vae import VAE


class ConditionalVAE(VAE):
    """A VAE whose encoder reads [x, y] (D + K) and whose decoder reads [z, y] (Dz + K)."""

    label_conditional = True  # evaluation labels its bounds log p(x | y); plots decode with a label

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, data_dim: int, latent_dim: int, classes: int,
                 **kw):
        super().__init__(encoder, decoder, data_dim=data_dim, latent_dim=latent_dim, **kw)
        self.classes = classes

    def split(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x (..., D), y (..., K)) from xy (..., D + K); y rounded to 0/1 (a dequantized one-hot is still one)."""
        if xy.shape[-1] != self.data_dim + self.classes:
            raise VaelabError(f"a conditional model reads an image and its one-hot label, {self.data_dim} + "
                              f"{self.classes} values per example; got {xy.shape[-1]}")
        return xy[..., :self.data_dim], (xy[..., self.data_dim:] > 0.5).to(xy.dtype)

    def one_hot(self, y: torch.Tensor, n: int) -> torch.Tensor:
        """y as n one-hot rows (n, K): from class numbers (n,) or one-hot rows; VaelabError for the wrong width."""
        y = torch.as_tensor(y, device=self.latent_prior_device())
        if y.ndim == 1 and not y.is_floating_point():
            if len(y) != n or (len(y) and (int(y.min()) < 0 or int(y.max()) >= self.classes)):
                raise VaelabError(f"y must be {n} class numbers from 0 to {self.classes - 1}")
            return F.one_hot(y.long(), self.classes).float()
        if y.ndim != 2 or y.shape != (n, self.classes):
            raise VaelabError(f"y must be {n} one-hot labels of width {self.classes} (this model's classes), "
                              f"got shape {tuple(y.shape)}")
        return y.float()

    def latent_prior_device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, xy: torch.Tensor) -> Distribution:
        """q(z | x, y) from xy (B, D + K)."""
        self.split(xy)
        return self.posterior_from(self.encoder(xy).float())

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """p(x | z, y) for z (..., Dz) and one-hot y broadcastable to (..., K)."""
        if y is None:
            raise VaelabError("a conditional model decodes z with a label: decode(z, y), y one-hot (..., K)")
        y = y.expand(*z.shape[:-1], self.classes)
        return dist.likelihood(self.likelihood, self.decoder(torch.cat([z, y.to(z.dtype)], -1)).float(), self.logvar)

    def log_likelihood(self, xy: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z, y), (K, B), y read from xy."""
        x, y = self.split(xy)
        return self.decode(z, y).log_prob(x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """The means of p(x | z, y) for n draws z ~ p(z), (n, D); y defaults to the classes in turn (i mod K)."""
        if n < 1:
            raise VaelabError(f"n must be at least 1, not {n}")
        y = self.one_hot(torch.arange(n) % self.classes if y is None else y, n)
        return self.decode(self.sample_latent(n, generator), y).mean

    @torch.no_grad()
    def reconstruct(self, xy) -> torch.Tensor:
        """E[x | z, y] at the posterior mean z = E_q[z | x, y], (N, D)."""
        xy = torch.as_tensor(xy).to(self.latent_prior_device(), torch.float32).reshape(len(xy), -1)
        return self.decode(self.embed(xy), self.split(xy)[1]).mean
