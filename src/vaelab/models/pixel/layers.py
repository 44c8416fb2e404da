"""The Gated PixelCNN network (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Choice: gated layers with a vertical and a horizontal stack, so the receptive field has no blind
spot (the plain masked 3x3 stack of PixelCNN misses a growing wedge to the upper right).

    vertical stack   v_l = tanh(a) * sigmoid(b),  (a, b) = V_l * v_{l-1} + C_l c
                     V_l is a (k//2+1) x k convolution whose lowest kernel row is the output row, so
                     v_l at row i sees input rows <= i (all columns within reach)
    horizontal stack h_l = h_{l-1} + W_l (tanh(a) * sigmoid(b)),
                     (a, b) = H_l * h_{l-1} + shift_down(U_l v_pre_l) + D_l c
                     H_l is a 1 x (k//2+1) convolution over columns <= j of the same row; shift_down moves
                     the vertical features one row down, so row i only hears rows < i from above
    type A (layer 0): H_0's mask drops the centre column, so h_0 at (i, j) does not see x_ij;
                     layer 0 has no residual (1 -> C channels)
    type B (l >= 1):  H_l keeps the centre column (h_{l-1} at (i, j) already excludes x_ij)
    output           logits = O_2 relu(O_1 relu(h_L)), 1x1 convolutions: 1 channel (Bernoulli) or 256
                     (a categorical over the grey levels) per colour channel
Colour (C > 1 channels, van den Oord et al. 2016, "Pixel Recurrent Neural Networks" section 3.4): pixels in
raster order and, within a pixel, R then G then B, so channel c of pixel i may read every channel of the pixels
before i and the channels < c of pixel i. The horizontal stack's features are split into C groups (channel m
of N in group m * C // N; the gate's a and b halves alike), group g computing channel g's prediction:
    left columns      every group reads every group (they are pixels before i)
    centre column     type A (layer 0, reading x): group g reads x's channels c < g
                      type B (layers >= 1, and the 1x1 convolutions h_out, O_1, O_2): group g reads groups <= g
The vertical stack needs no channel mask: its message reaches row i from rows < i only. With C = 1 the
masks are the grey ones (type A's centre column empty, type B's full), and the 1x1 convolutions carry none.
c is an optional conditioning map (B, Cc, H, W) projected by 1x1 convolutions (C_l, D_l) into every
gated layer (the paper's conditional PixelCNN with a spatial h = m(z)). An optional row context
(models/pixel/context.py) adds to c a map whose row i reads every row < i, so the reach above is the whole image.

Reach: the output at row i depends on input rows >= i - reach, reach = 1 + L * (k//2), and on row i
only through columns < j, at most L * (k//2) to the left; sampling (models/pixel/cache.py) computes one new
row of the vertical stack per row and one new column of the horizontal stack per pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .context import RowContext


def gate(pre: torch.Tensor) -> torch.Tensor:
    """tanh(a) * sigmoid(b) for pre = [a, b] on the channel axis, (B, 2C, H, W) -> (B, C, H, W)."""
    a, b = pre.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def colour_groups(n: int, colours: int) -> torch.Tensor:
    """The colour group of each of n channels, contiguous blocks: channel m -> m * colours // n, (n,)."""
    return torch.arange(n) * colours // n


def centre_mask(out_groups: torch.Tensor, in_groups: torch.Tensor, mask_type: str) -> torch.Tensor:
    """Which input channel each output channel may read at the pixel being predicted, (out, in):
    type A in group < out group (strictly earlier channels), type B in group <= out group."""
    before = in_groups[None, :] < out_groups[:, None]
    return (before if mask_type == "A" else before | (in_groups[None, :] == out_groups[:, None])).float()


def shift_down(t: torch.Tensor) -> torch.Tensor:
    """Row i takes row i-1's values; row 0 gets zeros, (B, C, H, W)."""
    return F.pad(t, (0, 0, 1, 0))[:, :, : t.shape[2]]


class HorizontalConv(nn.Conv2d):
    """A 1 x (k//2+1) convolution over columns j-k//2 .. j of the same row; column j (the pixel being predicted)
    masked by colour group: type A reads earlier channels only (none in grey), type B the same and earlier."""

    def __init__(self, c_in: int, c_out: int, k: int, mask_type: str, in_groups: torch.Tensor | None = None,
                 out_groups: torch.Tensor | None = None):
        super().__init__(c_in, c_out, (1, k // 2 + 1))
        mask = torch.ones_like(self.weight)  # (out, in, 1, k//2+1); groups default to one (grey)
        in_groups = torch.zeros(c_in, dtype=torch.long) if in_groups is None else in_groups
        out_groups = torch.zeros(c_out, dtype=torch.long) if out_groups is None else out_groups
        mask[:, :, 0, -1] = centre_mask(out_groups, in_groups, mask_type)  # the centre column: the pixel predicted
        self.register_buffer("mask", mask, persistent=False)
        self.left = k // 2

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (self.left, 0, 0, 0)), self.masked_weight(), self.bias)


class GroupedConv(nn.Conv2d):
    """A 1x1 convolution whose output group g reads input groups <= g (type B); no mask in grey (colours = 1)."""

    def __init__(self, c_in: int, c_out: int, colours: int = 1):
        super().__init__(c_in, c_out, 1)
        mask = None  # (out, in, 1, 1)
        if colours > 1:
            mask = centre_mask(colour_groups(c_out, colours), colour_groups(c_in, colours), "B")[..., None, None]
        self.register_buffer("colour_mask", mask, persistent=False)

    def masked_weight(self) -> torch.Tensor:
        return self.weight if self.colour_mask is None else self.weight * self.colour_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias)


class VerticalConv(nn.Conv2d):
    """A (k//2+1) x k convolution over rows i-k//2 .. i, columns j-k//2 .. j+k//2 (zero padded)."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(c_in, c_out, (k // 2 + 1, k))
        self.half = k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.half, self.half, self.half, 0)))


class GatedLayer(nn.Module):
    """One layer of both stacks; `first` makes it type A (no residual on the horizontal stack)."""

    def __init__(self, c_in: int, channels: int, k: int, cond_channels: int, first: bool, colours: int = 1):
        super().__init__()
        self.first = first
        self.v = VerticalConv(c_in, 2 * channels, k)
        gate_groups = colour_groups(channels, colours).repeat(2)  # (2C,): a's and b's channel m alike
        self.h = HorizontalConv(c_in, 2 * channels, k, "A" if first else "B", colour_groups(c_in, colours),
                                gate_groups)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)  # rows above only: no channel mask
        self.h_out = GroupedConv(channels, channels, colours)
        self.cond_v = nn.Conv2d(cond_channels, 2 * channels, 1, bias=False) if cond_channels else None
        self.cond_h = nn.Conv2d(cond_channels, 2 * channels, 1, bias=False) if cond_channels else None

    def vertical(self, v: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(v_l, the shifted message to the horizontal stack), both (B, ., H, W)."""
        pre = self.v(v) + (self.cond_v(c) if c is not None else 0.0)  # (B, 2C, H, W)
        return gate(pre), shift_down(self.v_to_h(pre))

    def horizontal(self, h: torch.Tensor, message: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """h_l from h_{l-1} and the vertical stack's (already shifted) message, (B, C, H, W)."""
        pre = self.h(h) + message + (self.cond_h(c) if c is not None else 0.0)
        out = self.h_out(gate(pre))
        return out if self.first else h + out


class GatedPixelCNN(nn.Module):
    """x (B, C, H, W) [and c (B, Cc, H, W)] -> logits (B, C * n_out, H, W), channel c's n_out logits at
    c * n_out .. (c+1) * n_out - 1, autoregressive in raster order and, within a pixel, in channel order.

    colours = C > 1 masks across the image's channels (colour images). in_channels > 1 with colours = 1 is for
    inputs whose channels all describe the same position (a code's embedding, the VQ-VAE's code prior): type A
    masks them together.
    """

    def __init__(self, channels: int, layers: int, kernel: int, n_out: int, cond_channels: int = 0,
                 context: RowContext | None = None, in_channels: int = 1, colours: int = 1):
        super().__init__()
        if colours > 1 and in_channels not in (1, colours):
            raise ValueError("a colour PixelCNN reads its image's channels: in_channels = colours")
        if colours > channels:
            raise ValueError(f"the PixelCNN needs at least one channel per colour ({colours}), not {channels}")
        in_channels = colours if colours > 1 else in_channels
        self.colours = colours
        if context is not None and context.channels != cond_channels:
            raise ValueError("the row context's map must have cond_channels channels")
        if kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"the PixelCNN kernel size must be odd and >= 3, not {kernel}")
        if layers < 1 or channels < 1:
            raise ValueError("the PixelCNN needs at least one layer and one channel")
        self.n_out, self.kernel, self.n_layers = n_out, kernel, layers
        self.layers = nn.ModuleList(GatedLayer(in_channels if i == 0 else channels, channels, kernel,
                                               cond_channels, i == 0, colours) for i in range(layers))
        self.out = nn.Sequential(nn.ReLU(), GroupedConv(channels, channels, colours), nn.ReLU(),
                                 GroupedConv(channels, colours * n_out, colours))
        self.context = context
        self.reach = 1 + layers * (kernel // 2)  # rows above the output row the stacks reach (the context: all)

    def condition(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor | None:
        """The map every gated layer reads: c, plus the row context of x when there is one, (B, Cc, H, W)."""
        if self.context is None:
            return c
        g = self.context(x)
        return g if c is None else c + g

    def vertical(self, x: torch.Tensor, c: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each layer's shifted message to the horizontal stack: row i depends only on x rows < i.

        c is the map the layers read, condition(x, c) (forward does this)."""
        v, messages = x, []
        for layer in self.layers:
            v, m = layer.vertical(v, c)
            messages.append(m)
        return messages

    def horizontal(self, x: torch.Tensor, messages: list[torch.Tensor], c: torch.Tensor | None = None
                   ) -> torch.Tensor:
        """The logits from the rows of x and the vertical messages for those rows, (B, n_out, H, W)."""
        h = x
        for layer, m in zip(self.layers, messages):
            h = layer.horizontal(h, m, c)
        return self.out(h)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = self.condition(x, c)
        return self.horizontal(x, self.vertical(x, c), c)
