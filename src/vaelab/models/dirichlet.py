"""The Laplace approximation of a Dirichlet prior in the softmax basis (Hennig et al. 2012; Srivastava & Sutton 2017).

theta = softmax(z) with z ~ N(mu, diag(sigma^2)) is a logistic normal. Matching it to Dirichlet(alpha)
over K topics at the mode, in the softmax basis (Srivastava & Sutton 2017, eq. 3; MacKay 1998):
    mu_k      = log alpha_k - (1/K) sum_i log alpha_i
    sigma^2_k = (1/alpha_k) (1 - 2/K) + (1/K^2) sum_i 1/alpha_i
For alpha = 1: mu = 0 and sigma^2 = 1 - 1/K. The prior is an ordinary diagonal Gaussian over z, so
KL(q(z|d) || p(z)) between two such logistic normals is the Gaussian one in closed form
(torch.distributions), and the ELBO, IWAE-k and NLL-k are bounds for the model p(z) p(d | softmax(z)).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

_CHECK = dict(validate_args=False)


def laplace_moments(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma^2) of the Laplace approximation of Dirichlet(alpha), alpha (K,) > 0, each (K,)."""
    k = alpha.numel()
    mu = alpha.log() - alpha.log().mean()
    var = (1.0 / alpha) * (1.0 - 2.0 / k) + (1.0 / alpha).sum() / k**2
    return mu, var


class DirichletLaplace(nn.Module):
    """p(z) = N(mu, diag(sigma^2)), the Laplace approximation of a symmetric Dirichlet(alpha) over latent_dim topics."""

    def __init__(self, latent_dim: int, data_dim: int = 0, alpha: float = 1.0):
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, not {alpha}")
        mu, var = laplace_moments(torch.full((latent_dim,), float(alpha), dtype=torch.float64))
        self.alpha = float(alpha)
        # buffers follow the model across devices; they are a function of alpha (in the config), not weights
        self.register_buffer("loc", mu.float(), persistent=False)
        self.register_buffer("scale", var.sqrt().float(), persistent=False)

    def forward(self, model: nn.Module | None = None) -> Distribution:
        return Independent(Normal(self.loc, self.scale, **_CHECK), 1, **_CHECK)
