"""PixelVAE: a VAE whose decoder p(x|z) is a small Gated PixelCNN conditioned on z (Gulrajani et al. 2017).

q(z|x) is the VAE's (a Gaussian by default), p(z) a registered prior, and
    p(x | z) = prod_i p(x_i | x_<i, z),   (colour: and channel by channel within a pixel, models/pixel/layers.py)
                                           m(z) = a (Cc, H, W) map from z, added by 1x1 convolutions in every
                                           gated layer (the conditional PixelCNN of van den Oord et al. 2016)
log_likelihood(x, z) is that exact autoregressive log p(x|z), so the ELBO, IWAE-k and NLL-k come from the
generic estimators unchanged. A strong decoder can model x without z (posterior collapse: KL -> 0); the
remedies here are free bits (free_bits: SGVB-B's loss charges each latent dimension at least that many nats,
Kingma et al. 2016), a decoder with few layers (a short reach, pixel_layers) and KL warm-up (kl_warmup);
the logged and evaluated numbers stay the true bound, and evaluation reports the KL and the active units,
so a run shows whether it collapsed.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution

from ..vae import VAE
from .context import RowContext
from .layers import GatedPixelCNN
from .pixelcnn import PixelImage
from .sampling import KINDS


class PixelDecoder(nn.Module):
    """m(z): z (..., Dz) -> a conditioning map (..., Cc, H, W), and the PixelCNN that reads it."""

    def __init__(self, to_map: nn.Module, pixel: GatedPixelCNN, cond_channels: int, hw: tuple[int, int]):
        super().__init__()
        self.to_map, self.pixel, self.cond_channels, self.hw = to_map, pixel, cond_channels, hw

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_map(z).reshape(*z.shape[:-1], self.cond_channels, *self.hw)


class PixelVAE(VAE):
    """A VAE with an autoregressive decoder: decode(z) is a PixelImage, sample draws z ~ p(z) then x pixel by pixel."""

    def __init__(self, encoder: nn.Module, decoder: PixelDecoder, *, latent_dim: int, likelihood: str = "bernoulli",
                 **kw):
        super().__init__(encoder, decoder, data_dim=decoder.pixel.colours * math.prod(decoder.hw),
                         latent_dim=latent_dim, likelihood=likelihood, **kw)
        self.hw = decoder.hw
        # widest activation per (point, sample), for evaluation's chunking (evaluation.widest_activation)
        self.activation_width = 2 * decoder.pixel.layers[0].h_out.out_channels * self.data_dim

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) = prod_i p(x_i | x_<i, z), batch shape z's leading dimensions; its log_prob is exact."""
        return PixelImage(self.decoder.pixel, self.hw, self.likelihood, self.decoder(z), z.shape[:-1])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p(z), then x ~ p(x|z) pixel by pixel (the draws, not means: an autoregressive p(x|z) has no
        closed-form mean), (n, D)."""
        return self.decode(self.sample_latent(n, generator)).sample(generator=generator)


def build_pixel_vae(encoder: nn.Module, to_map: nn.Module, hw: tuple[int, int], *, channels: int, layers: int,
                    kernel: int, cond_channels: int, likelihood: str, latent_dim: int, context: int = 0,
                    colours: int = 1, **kw) -> PixelVAE:
    """A PixelVAE from an encoder, a z -> (Cc*H*W) network and the PixelCNN's sizes (context: the row
    context's hidden units, 0 for none; its map adds to m(z); colours: the image's channels)."""
    pixel = GatedPixelCNN(channels, layers, kernel, KINDS[likelihood], cond_channels,
                          RowContext(hw, context, cond_channels, colours) if context else None, colours=colours)
    return PixelVAE(encoder, PixelDecoder(to_map, pixel, cond_channels, hw), latent_dim=latent_dim,
                    likelihood=likelihood, **kw)
