"""Incremental evaluation of a Gated PixelCNN for sampling: each step computes one new pixel's column only.

Sampling takes H*W sequential steps. Running the convolutions over the image (or a crop of it) at
every step costs ~0.3 ms per CPU convolution call on tiny tensors, whatever its size, so this
evaluates the same network as matrix products on channels-last caches (Ramachandran et al. 2017,
"Fast generation for convolutional autoregressive models"):
    vertical stack   once per finished row: every layer's row i-1 from the k//2+1 rows above it
                     (cached), giving the messages every pixel of row i needs
    horizontal stack once per pixel: every layer's column j from the k//2+1 cached columns to its left
    conditioning     the map's row i (the given c, plus the row context of the rows drawn so far) once
                     per row
    colour           C passes of the horizontal stack per pixel, one per channel in order: the pass for
                     channel c reads the channels < c already set at (i, j) (the masks hide the others)
The weights are the network's own (the masks applied); tests check that the logits of every
step equal the full forward pass on the finished images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layers import GatedPixelCNN


def _gate(pre: torch.Tensor) -> torch.Tensor:
    a, b = pre.chunk(2, dim=-1)  # channels last
    return torch.tanh(a) * torch.sigmoid(b)


def _dense(conv: torch.nn.Conv2d, weight: torch.Tensor | None = None) -> torch.Tensor:
    """A convolution's weight (out, in, kh, kw) as a matrix over channels-last patches, (kh*kw*in, out)."""
    w = conv.weight if weight is None else weight
    return w.permute(2, 3, 1, 0).reshape(-1, w.shape[0])


class CachedPixelCNN:
    """The state of n images being drawn: the inputs of every layer, channels last, zero padded like the convs."""

    def __init__(self, net: GatedPixelCNN, n: int, hw: tuple[int, int], cond: torch.Tensor | None = None):
        self.net, self.n, (self.height, self.width) = net, n, hw
        k = net.kernel
        self.p, self.kh = k // 2, k // 2 + 1
        dev = next(net.parameters()).device
        channels = [net.layers[0].h.in_channels] + [layer.h_out.out_channels for layer in net.layers]  # inputs
        # vertical inputs (n, p + H, p + W + p, C_l): layer 0 reads x, layer l reads v_{l-1}
        self.vin = [torch.zeros(n, self.p + self.height, self.width + 2 * self.p, c, device=dev) for c in channels]
        # horizontal inputs of the current row (n, p + W, C_l): layer 0 reads x, layer l reads h_{l-1}
        self.hin = [torch.zeros(n, self.p + self.width, c, device=dev) for c in channels]
        self.messages = [torch.zeros(n, self.width, 2 * c, device=dev) for c in channels[1:]]  # row 0: none
        self.w = [(_dense(layer.v), _dense(layer.h, layer.h.masked_weight()), _dense(layer.v_to_h),
                   _dense(layer.h_out, layer.h_out.masked_weight())) for layer in net.layers]
        # the conditioning map, channels last (n, H, W, Cc): the given c now, the row context's rows as they come
        self.map = None
        if cond is not None or net.context is not None:
            cc = net.layers[0].cond_v.in_channels
            self.map = (torch.zeros(n, self.height, self.width, cc, device=dev) if cond is None
                        else cond.permute(0, 2, 3, 1).clone())
        self.wc = [None if layer.cond_v is None else (_dense(layer.cond_v), _dense(layer.cond_h))
                   for layer in net.layers]
        self.cond_h: list[torch.Tensor | None] = [None] * len(net.layers)  # the current row's terms, (n, W, 2C)

    def _x(self) -> torch.Tensor:
        """The images drawn so far, flat (n, C*H*W) in (C, H, W) order (zeros where not yet drawn)."""
        return self.vin[0][:, self.p:, self.p:self.p + self.width].permute(0, 3, 1, 2).reshape(self.n, -1)

    def start_row(self, i: int) -> None:
        """Messages for row i from the finished row i-1 (every layer's vertical stack at row i-1)."""
        for h in self.hin:
            h.zero_()
        if self.net.context is not None:  # row i of the map: rows < i are drawn
            self.map[:, i] += self.net.context.row(self._x(), i)
        if self.map is not None:
            self.cond_h = [None if w is None else self.map[:, i] @ w[1] for w in self.wc]
        if i == 0:
            return
        for depth, layer in enumerate(self.net.layers):
            wv, _, wvh, _ = self.w[depth]
            rows = self.vin[depth][:, i - 1:i - 1 + self.kh]  # (n, kh, W + 2p, C): rows i-1-p .. i-1
            patches = rows.unfold(2, 2 * self.p + 1, 1)  # (n, kh, W, C, k)
            patches = patches.permute(0, 2, 1, 4, 3).reshape(self.n, self.width, -1)  # (n, W, kh*k*C)
            pre = torch.addmm(layer.v.bias, patches.reshape(-1, patches.shape[-1]), wv).reshape(self.n, self.width, -1)
            if self.wc[depth] is not None:
                pre = pre + self.map[:, i - 1] @ self.wc[depth][0]
            if depth + 1 < len(self.vin):
                self.vin[depth + 1][:, self.p + i - 1, self.p:self.p + self.width] = _gate(pre)
            self.messages[depth] = (pre @ wvh + layer.v_to_h.bias)  # (n, W, 2C)

    def logits(self, i: int, j: int) -> torch.Tensor:
        """The output at pixel (i, j), (n, C*n_out); x at (i, j') for j' < j and rows < i must be set (channel c's
        logits also need the channels < c at (i, j); recomputing column j after setting one is exact)."""
        h = None
        for depth, layer in enumerate(self.net.layers):
            _, wh, _, wo = self.w[depth]
            patch = self.hin[depth][:, j:j + self.kh].reshape(self.n, -1)  # columns j-p .. j, (n, kh*C)
            pre = torch.addmm(layer.h.bias, patch, wh) + self.messages[depth][:, j]
            if self.cond_h[depth] is not None:
                pre = pre + self.cond_h[depth][:, j]
            out = torch.addmm(layer.h_out.bias, _gate(pre), wo)
            h = out if layer.first else self.hin[depth][:, self.p + j] + out
            if depth + 1 < len(self.hin):
                self.hin[depth + 1][:, self.p + j] = h
        o1, o2 = self.net.out[1], self.net.out[3]
        w1, w2 = _dense(o1, o1.masked_weight()), _dense(o2, o2.masked_weight())
        return torch.addmm(o2.bias, F.relu(torch.addmm(o1.bias, F.relu(h), w1)), w2)

    def set(self, i: int, j: int, value: torch.Tensor, channel: int = 0) -> None:
        """Write the drawn x_ij of one channel, (n,), where both stacks read it."""
        self.vin[0][:, self.p + i, self.p + j, channel] = value
        self.hin[0][:, self.p + j, channel] = value
