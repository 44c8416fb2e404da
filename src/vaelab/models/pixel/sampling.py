"""Exact log p(x) of a Gated PixelCNN in one pass, and drawing images from it pixel by pixel.

log p(x | c) = sum_i log p(x_i | x_<i, c) (raster order), exact: one teacher-forced forward pass
gives every conditional at once. Colour images (C channels) are flat (C, H, W); their order is raster order
and, within a pixel, channel order, so log p(x | c) = sum_i sum_c log p(x_ic | x_<i, x_i,<c, c), summed over
C*H*W. Two output kinds, per pixel and channel:
    bernoulli    x_i in {0, 1}, p(x_i = 1 | .) = sigmoid(logit_i)           (binarized data)
    categorical  x_i in {0, ..., 255} / 255, a softmax over the 256 levels   (grey data; level = round(255 x))
Sampling needs H*W sequential steps; models/pixel/cache.py computes each step's new column only.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch.distributions import Categorical
from tqdm.auto import tqdm

from ...distributions.densities import BernoulliLogits
from .cache import CachedPixelCNN
from .layers import GatedPixelCNN

LEVELS = 256
KINDS = {"bernoulli": 1, "categorical": LEVELS}  # likelihood -> output channels
CHUNK = 256  # images per forward pass when no gradient is kept (evaluation memory)


def levels(x: torch.Tensor) -> torch.Tensor:
    """Grey values in [0, 1] -> integer levels 0..255."""
    return (x.clamp(0.0, 1.0) * (LEVELS - 1)).round().long()


def conditionals(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """log p(x_ic | everything before it) per pixel and channel, (N, C, H, W), from logits (N, C*n_out, H, W)
    and images x (N, C, H, W)."""
    n, colours, height, width = x.shape
    logits = logits.reshape(n, colours, -1, height, width)  # (N, C, n_out, H, W)
    if kind == "bernoulli":
        return BernoulliLogits(logits=logits[:, :, 0], validate_args=False).log_prob(x)
    return Categorical(logits=logits.movedim(2, -1), validate_args=False).log_prob(levels(x))


def image_log_prob(net: GatedPixelCNN, x: torch.Tensor, hw: tuple[int, int], kind: str,
                   cond: torch.Tensor | None = None) -> torch.Tensor:
    """log p(x | cond) per image, (N,), for flat x (N, C*H*W) and cond (N, Cc, H, W) or None."""
    if not torch.is_grad_enabled() and x.shape[0] > CHUNK:  # evaluation: bounded memory
        return torch.cat([image_log_prob(net, x[i:i + CHUNK], hw, kind, None if cond is None else cond[i:i + CHUNK])
                          for i in range(0, x.shape[0], CHUNK)])
    img = x.reshape(-1, net.colours, *hw)
    return conditionals(net(img, cond).float(), img, kind).sum((-3, -2, -1))


def draw(logits: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    """One value per row of logits (N, n_out): 0/1, or a level / 255."""
    if kind == "bernoulli":
        return torch.bernoulli(torch.sigmoid(logits[:, 0].float()), generator=generator)
    return torch.multinomial(logits.float().softmax(-1), 1, generator=generator)[:, 0].float() / (LEVELS - 1)


@torch.no_grad()
def sample_images(net: GatedPixelCNN, n: int, hw: tuple[int, int], kind: str, cond: torch.Tensor | None = None,
                  generator: torch.Generator | None = None, progress: bool | None = None,
                  logits_out: torch.Tensor | None = None) -> torch.Tensor:
    """n images drawn pixel by pixel in raster order (and, in colour, channel by channel within a pixel),
    (n, C*H*W); progress None: a bar on a terminal only.

    logits_out (n, C*n_out, H, W), when given, receives every step's logits (tests compare them with net(x)).
    """
    height, width = hw
    colours = net.colours
    cache = CachedPixelCNN(net, n, hw, cond)
    x = torch.zeros(n, colours, height, width)
    bar = tqdm(total=height * width, desc="sampling", unit="pixel", leave=False,
               disable=None if progress is None else not progress)
    with threads(1):  # thousands of tiny products: a second thread only adds hand-over time
        for i in range(height):
            cache.start_row(i)
            for j in range(width):
                for c in range(colours):  # R, then G given R, then B given both
                    logits = cache.logits(i, j).float()  # (n, C*n_out)
                    logits = logits[:, c * net.n_out:(c + 1) * net.n_out]  # (n, n_out): channel c's
                    if logits_out is not None:
                        logits_out[:, c * net.n_out:(c + 1) * net.n_out, i, j] = logits
                    # drawn on the CPU from the caller's (CPU) generator: a seed gives the same images on any device
                    x[:, c, i, j] = draw(logits.cpu(), kind, generator)
                    cache.set(i, j, x[:, c, i, j].to(logits), c)
                bar.update(1)
    bar.close()
    return x.reshape(n, colours * height * width).to(logits)


@contextmanager
def threads(n: int):
    """torch's intra-op threads set to n inside the block (CPU), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)
