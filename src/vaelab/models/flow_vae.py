"""The VAE with a flow posterior: q(z|x) = a Gaussian base q0(z_0|x) pushed through planar or IAF steps (flows.py).

The encoder emits [loc, scale pre-activation, h]: q0's parameters and the flow's context h (B, C).
encode(x) returns q0 with h attached (q0.context), so evaluation's one encoder pass per chunk
serves every sample, and posterior_sample(x, k, q0) returns z_N and
    log q(z_N|x) = log q0(z_0|x) - sum_n log |det J_n|          (Rezende & Mohamed 2015, eq. 13)
KL(q || p) has no closed form (analytic_kl is None): SGVB-B runs as SGVB-A, and evaluation says so.
embed(x) is the base mean pushed through the flow, the code the plots draw.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from ..runtime import split_noise
from .flows import Flow
from .vae import VAE


class FlowVAE(VAE):
    """A VAE whose posterior is q0 followed by `steps` flow steps of `kind`;
    the encoder's last `context` outputs are h."""

    mean_in_closed_form = False  # E_q[z_K] is neither q0's mean nor embed's (the mean pushed through the flow)

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, kind: str, steps: int, context: int, **kw):
        super().__init__(encoder, decoder, **kw)
        self.context = context
        self.flow = Flow(kind, steps, self.latent_dim, context)

    def posterior_from(self, raw: torch.Tensor) -> Distribution:
        """q0 from raw (..., 2*Dz + C) = [loc, scale pre-activation, h], with h attached as q0.context."""
        q0 = super().posterior_from(raw[..., :-self.context])
        q0.context = raw[..., -self.context:]
        return q0

    def posterior_sample(self, x: torch.Tensor, k: int, q: Distribution | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.encode(x) if q is None else q
        h = getattr(q, "context", None)
        if h is None:
            raise ValueError("a flow posterior needs the context its encoder emits; pass q = model.encode(x)")
        z0 = split_noise.rsample(q, k)  # (K, B, Dz)
        z, log_det = self.flow(z0, h)
        return z, q.log_prob(z0) - log_det

    def analytic_kl(self, q: Distribution) -> None:
        return None  # q is not q0 alone: the flow's log-determinants enter by Monte Carlo

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The base mean pushed through the flow, (B, Dz)."""
        q = self.encode(x)
        return self.flow(q.mean[None], q.context)[0][0]
