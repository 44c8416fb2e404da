"""PixelCNN: an explicit density with an exact log-likelihood, p(x) = prod_i p(x_i | x_<i)
(van den Oord et al. 2016, PixelCNN).

The network is a Gated PixelCNN (models/pixel/layers.py: vertical and horizontal stacks, no blind spot,
gated tanh * sigmoid units, residual horizontal connections, optional conditioning map); the output
is a Bernoulli per pixel for binarized data or a categorical over 256 levels for grey data
(models/pixel/sampling.py). PixelImage is p(x | c) as a torch Distribution, so the PixelVAE's decoder
(models/pixel/pixel_vae.py) plugs into the generic estimators through log_prob.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, constraints

from ...errors import ConfigError, VaelabError
from ..contract import ExactLikelihoodModel
from .context import RowContext
from .layers import GatedPixelCNN
from .sampling import KINDS, image_log_prob, sample_images


def image_hw(shape: tuple[int, ...], model: str = "pixelcnn", channels: int | None = None) -> tuple[int, int]:
    """(H, W) of images (C, H, W); a ConfigError for anything else (corpora, flat vectors), or for more colour
    channels than the PixelCNN has feature channels (each colour needs a group of its own, `channels`)."""
    if len(shape) != 3:
        raise ConfigError(f"model {model} models images of shape (C, H, W); this data has examples "
                          f"of shape {tuple(shape)}")
    if channels is not None and shape[0] > channels:
        raise ConfigError(f"model {model} splits its pixel_channels into one group per colour channel: "
                          f"{shape[0]} colour channels need pixel_channels >= {shape[0]}, not {channels}")
    return shape[1], shape[2]


def output_kind(likelihood: str, binarize: bool, model: str = "pixelcnn") -> str:
    """The output distribution for a likelihood: bernoulli (binarized data only) or categorical (256 levels)."""
    if likelihood not in KINDS:
        raise ConfigError(f"model {model} outputs a Bernoulli per pixel (likelihood = bernoulli, binarized data) "
                          f"or a categorical over 256 levels (likelihood = categorical), not {likelihood!r}")
    if likelihood == "bernoulli" and not binarize:
        raise ConfigError(f"model {model} with a Bernoulli output needs binarize = true: the Bernoulli "
                          "likelihood of grey values is not normalised (use likelihood = categorical for grey data)")
    return likelihood


class PixelImage(Distribution):
    """p(x | c) = prod_i p(x_i | x_<i, c) over flat images (..., C*H*W); batch shape: the conditioning's leading
    dims."""

    arg_constraints: dict = {}
    support = constraints.unit_interval

    def __init__(self, net: GatedPixelCNN, hw: tuple[int, int], kind: str, cond: torch.Tensor | None,
                 batch_shape: torch.Size = torch.Size()):
        self.net, self.hw, self.kind, self.cond = net, hw, kind, cond
        super().__init__(torch.Size(batch_shape), torch.Size((net.colours * math.prod(hw),)), validate_args=False)

    def _flat_cond(self) -> torch.Tensor | None:
        return None if self.cond is None else self.cond.reshape(-1, *self.cond.shape[-3:])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Exact log p(x | c), one teacher-forced pass: x (..., D) broadcast to the batch shape -> batch shape."""
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        x = value.expand(*shape, value.shape[-1]).reshape(-1, value.shape[-1])
        cond = None
        if self.cond is not None:  # (*batch, Cc, H, W) -> (N, Cc, H, W), N the broadcast shape's size
            cond = self.cond.expand(*shape, *self.cond.shape[-3:]).reshape(-1, *self.cond.shape[-3:])
        return image_log_prob(self.net, x, self.hw, self.kind, cond).reshape(shape)

    def sample(self, sample_shape: torch.Size = torch.Size(), generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Draws pixel by pixel, (*sample_shape, *batch_shape, D)."""
        n = math.prod(sample_shape) * math.prod(self.batch_shape)
        cond = self._flat_cond()
        if cond is not None:
            cond = cond.repeat(math.prod(sample_shape), 1, 1, 1)
        x = sample_images(self.net, n, self.hw, self.kind, cond, generator)
        return x.reshape(*sample_shape, *self.batch_shape, -1)

    @property
    def mean(self) -> torch.Tensor:
        raise VaelabError("the mean of an autoregressive p(x|z) has no closed form (each pixel's distribution "
                          "depends on the pixels drawn before it); see the samples instead")


class PixelCNN(ExactLikelihoodModel):
    """An unconditional Gated PixelCNN over (C, H, W) images: log_prob is exact, sample draws pixel by pixel
    (and channel by channel within a pixel, colours = C > 1)."""

    def __init__(self, hw: tuple[int, int], *, channels: int, layers: int, kernel: int, likelihood: str = "bernoulli",
                 context: int = 0, colours: int = 1):
        super().__init__()
        self.hw, self.likelihood = hw, likelihood
        self.data_dim = colours * math.prod(hw)
        cond = channels if context else 0  # the row context's map has as many channels as the stacks
        self.net = GatedPixelCNN(channels, layers, kernel, KINDS[likelihood], cond,
                                 RowContext(hw, context, cond, colours) if context else None, colours=colours)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = sum_i sum_c log p(x_ic | x_<i, x_i,<c) per example, x (B, C*H*W) -> (B,)."""
        return image_log_prob(self.net, x, self.hw, self.likelihood)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images drawn pixel by pixel (the draws themselves, not means), (n, D) in [0, 1]."""
        return sample_images(self.net, n, self.hw, self.likelihood, None, generator)
