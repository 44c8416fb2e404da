"""Row context: a conditioning map that lets every pixel hear all rows above it, not only the conv stacks' reach.

The gated stacks (models/pixel/layers.py) see 1 + L * (k//2) rows up; a garment's shape is set many rows higher.
RowContext is a one-hidden-layer MADE (Germain et al. 2015) with rows as its ordering:
    hidden unit u has a cut m_u in 1 .. H-1 and reads the pixels of rows < m_u,
    the map at row i (every channel, every column) reads the hidden units with m_u <= i,
so the map at row i depends on rows < i only (all their colour channels: all are before row i), and enters
every gated layer like the PixelVAE's m(z) (1x1 convolutions, pixel_layers.GatedLayer). Row 0's map is a bias.
Cost per image: hidden * (H*W) * (1 + C) multiply-adds (256 units, C = 16, 28x28: 3.4 M, against ~19 M for 4 gated
layers of 16 channels).
Sampling computes one row of the map per finished row (row()).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RowContext(nn.Module):
    """x (B, Cx, H, W) -> a map (B, C, H, W) whose row i is a function of x's rows < i."""

    def __init__(self, hw: tuple[int, int], hidden: int, channels: int, colours: int = 1):
        super().__init__()
        height, width = hw
        self.hw, self.channels = hw, channels
        cuts = 1 + torch.arange(hidden) % max(height - 1, 1)  # m_u, spread evenly over 1 .. H-1
        pixel_row = torch.arange(height).repeat_interleave(width)  # (H*W,) raster order
        map_row = pixel_row.repeat(channels)  # (C*H*W,) the map flattened as (C, H, W)
        pixel_row = pixel_row.repeat(colours)  # (Cx*H*W,) the image flattened as (Cx, H, W)
        self.inp = nn.Linear(colours * height * width, hidden)
        self.out = nn.Linear(hidden, channels * height * width)
        self.register_buffer("mask_in", (pixel_row[None, :] < cuts[:, None]).float(), persistent=False)
        self.register_buffer("mask_out", (cuts[None, :] <= map_row[:, None]).float(), persistent=False)

    def units(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden units from flat images, (B, Cx*H*W) -> (B, hidden)."""
        return F.relu(F.linear(x, self.inp.weight * self.mask_in, self.inp.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.units(x.flatten(1))
        return F.linear(h, self.out.weight * self.mask_out, self.out.bias).reshape(-1, self.channels, *self.hw)

    def row(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Row i of the map, channels last, from flat images whose rows < i are set: (n, Cx*H*W) -> (n, W, C)."""
        height, width = self.hw
        rows = (self.channels, height, width, -1)  # only row i's weights are masked, not the whole map's
        w = self.out.weight.reshape(rows)[:, i] * self.mask_out.reshape(rows)[:, i]  # (C, W, hidden)
        b = self.out.bias.reshape(self.channels, height, width)[:, i]  # (C, W)
        return torch.einsum("nu,cwu->nwc", self.units(x), w) + b.T
