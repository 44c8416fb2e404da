"""Gated convolutional networks: the convolutional HVAE's encoders and decoder (Tomczak & Welling 2018's convHVAE).

Every layer is a gated linear unit over channels (Dauphin et al. 2017): one convolution with 2C
output channels, split into (a, b), and the output a * sigmoid(b) (torch's F.glu). The gate can pass
a feature on unchanged or shut it per position, which is what lets the VampPrior paper's
convolutional HVAE stack more layers than the conv VAE's plain ReLU pair. Sizes, for a (C, H, W) image
whose sides divide by 4:
    GatedConvEncoder  x -> 3x3 (32) -> 3x3 stride 2 (32) -> 3x3 (64) -> 3x3 stride 2 (64) -> dense -> d_out
    GatedConvDecoder  z -> dense, 64 x H/4 x W/4 -> transposed 3x3 stride 2 (64) -> 3x3 (64)
                        -> transposed 3x3 stride 2 (32) -> 3x3 (32) -> 3x3 to C logits or means (not gated)
Like models/networks.py, both take and return flat vectors with any leading dimensions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .networks import check_conv_shape


class Gated(nn.Module):
    """a * sigmoid(b) for (a, b) = conv(x) split on the channel axis; conv has twice the layer's channels."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.conv(x), dim=1)  # (N, 2C, H, W) -> (N, C, H, W)


def gated(c_in: int, c_out: int, stride: int = 1, transposed: bool = False) -> Gated:
    """A gated 3x3 layer: stride 2 halves H and W (transposed: doubles them), stride 1 keeps them."""
    if transposed:
        return Gated(nn.ConvTranspose2d(c_in, 2 * c_out, 3, stride=2, padding=1, output_padding=1))
    return Gated(nn.Conv2d(c_in, 2 * c_out, 3, stride=stride, padding=1))


class GatedConvEncoder(nn.Module):
    """x (..., C*H*W) -> (..., d_out) through four gated conv layers and a dense layer."""

    def __init__(self, shape: tuple[int, ...], d_out: int):
        super().__init__()
        c, h, w = check_conv_shape(shape)
        self.shape = (c, h, w)
        self.body = nn.Sequential(gated(c, 32), gated(32, 32, stride=2), gated(32, 64), gated(64, 64, stride=2),
                                  nn.Flatten())
        self.head = nn.Linear(64 * (h // 4) * (w // 4), d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = self.body(x.reshape(-1, *self.shape))  # (N, C, H, W) -> (N, 64*H/4*W/4)
        return self.head(y).reshape(*lead, -1)


class GatedConvDecoder(nn.Module):
    """z (..., d_in) -> (..., C*H*W): a dense layer to 64 x H/4 x W/4, four gated layers, a plain 3x3 output."""

    def __init__(self, d_in: int, shape: tuple[int, ...]):
        super().__init__()
        c, h, w = check_conv_shape(shape)
        self.start = (64, h // 4, w // 4)
        self.dense = nn.Linear(d_in, math.prod(self.start))
        self.body = nn.Sequential(gated(64, 64, transposed=True), gated(64, 64), gated(64, 32, transposed=True),
                                  gated(32, 32), nn.Conv2d(32, c, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        y = self.dense(z.reshape(-1, z.shape[-1])).reshape(-1, *self.start)
        return self.body(y).reshape(*lead, -1)  # (..., C*H*W)
