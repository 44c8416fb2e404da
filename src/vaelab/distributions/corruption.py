"""Corruption processes q_D(x~ | x) of the denoising autoencoder (Vincent et al. 2008/2010, denoising autoencoders).

    gaussian : x~ = x + eps,      eps ~ N(mu_D, Sigma_D), here Sigma_D = sigma^2 I
    masking  : x~ = x * (1 - m),  m_d ~ Bernoulli(p), each input dimension zeroed with probability p

The seed writes masking noise as x + eps with eps ~ Bernoulli(p). Adding a 0/1 draw would turn
black pixels white and push white ones to 2, off the data's range; what the DAE papers (Vincent et
al. 2008, 2010) call masking noise, and what we implement, forces a random fraction p of the inputs
to 0. The loss always compares the reconstruction with the clean x, never with x~.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Normal

from ..errors import ConfigError
from ..runtime import split_noise as noise

EVAL_NOISE_SEED = 17032008  # evaluation corrupts with its own fixed noise, so every model sees the same x~


@dataclass(frozen=True)
class Noise:
    """One corruption process: kind in NOISES, level = p (masking) or sigma (gaussian), mean = mu_D."""

    kind: str = "masking"
    level: float = 0.25
    mean: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in NOISES:
            raise ConfigError(f"noise must be one of {', '.join(NOISES)}, not {self.kind!r}")
        if not (math.isfinite(self.level) and math.isfinite(self.mean)) or self.level < 0 \
                or (self.kind == "masking" and self.level >= 1):
            raise ConfigError(f"noise level must be >= 0 (and below 1 for masking) and its mean finite, not "
                              f"{self.level} and {self.mean}")

    def describe(self) -> str:
        """Human-readable form, e.g. 'masking p=0.25'."""
        return NOISES[self.kind][1].format(level=self.level, mean=self.mean)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x~ ~ q_D(x~ | x) for x of shape (B, D), drawn from the global RNG unless a generator is given.

        Training draws go through runtime/split_noise.py, so a data-parallel run corrupts exactly like one process.
        """
        return NOISES[self.kind][0](x, self.level, self.mean, generator)


def _masking(x: torch.Tensor, p: float, mean: float, generator: torch.Generator | None) -> torch.Tensor:
    """Each input set to 0 with probability p (mean unused)."""
    u = noise.uniform(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x * (u >= p)


def _gaussian(x: torch.Tensor, sigma: float, mean: float, generator: torch.Generator | None) -> torch.Tensor:
    """x + N(mean, sigma^2) on each input."""
    if generator is not None:
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    else:
        eps = noise.rsample(Normal(torch.zeros_like(x), torch.ones_like(x), validate_args=False), 1)[0]
    return x + mean + sigma * eps


# kind -> (x~ ~ q_D(x~ | x) from x (B, D), level, mean and a generator or None; how Noise.describe writes it). The
# config's and the CLI's list of noises (config/choices.py reads the keys): a new corruption is one entry here.
NOISES: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
    "masking": (_masking, "masking p={level:g}"),
    "gaussian": (_gaussian, "gaussian N({mean:g}, {level:g}^2)"),
}


def from_config(c) -> Noise:
    """The corruption process a config describes."""
    return Noise(c.noise, c.noise_level, c.noise_mean)


def fixed(noise: Noise, x: torch.Tensor, seed: int = EVAL_NOISE_SEED) -> torch.Tensor:
    """One seeded corruption of x (drawn on the CPU so it is the same on every device)."""
    g = torch.Generator().manual_seed(seed)
    return noise(x.cpu(), g).to(x.device)
