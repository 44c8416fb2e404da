"""Normalizing flows for q(z|x): invertible steps z -> f(z; h) with their log |det df/dz|, no densities here.

A flow posterior (flow_vae.py) draws z_0 from the Gaussian base q0(z|x) and pushes it through N steps:
    z_N = f_N o ... o f_1(z_0),   log q(z_N|x) = log q0(z_0|x) - sum_n log |det df_n/dz_{n-1}|
Each step is conditioned on a context vector h (B, C) that the encoder emits beside q0's parameters.

planar  (Rezende & Mohamed 2015, eq. 10-12): f(z) = z + u^ tanh(w.z + b),
        log|det| = log|1 + u^.psi(z)|, psi(z) = (1 - tanh^2(w.z + b)) w. u, w, b are amortized:
        a linear map of h per step. u^ = u + (m(w.u) - w.u) w / |w|^2, m(a) = -1 + softplus(a),
        makes w.u^ >= -1, so every step is invertible (their appendix A.1).
iaf     (Kingma et al. 2016, eq. 11-14 and §4): [m, s] = MADE(z, h), sigma = sigmoid(s),
        f(z) = sigma * z + (1 - sigma) * m, log|det| = sum log sigma (the Jacobian is triangular,
        since output i reads only inputs before i). The numerically stable form of their update;
        s starts near +1 (a forget-gate bias), so each step starts close to the identity.
        The order of the latent dimensions is reversed between IAF steps.
Shapes: z (K, B, Dz), h (B, C), log-determinants (K, B).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

GATE_BIAS = 1.0  # IAF's s starts at about +1: sigma ~ 0.73, mostly keeping z


class Planar(nn.Module):
    """One planar step with (u, w, b) read off the context h."""

    def __init__(self, dz: int, context: int):
        super().__init__()
        self.dz = dz
        self.params = nn.Linear(context, 2 * dz + 1)  # h -> [u, w, b]

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, w, b = self.params(h).split((self.dz, self.dz, 1), -1)  # (B, Dz), (B, Dz), (B, 1)
        wu = (w * u).sum(-1, keepdim=True)  # (B, 1)
        u_hat = u + (F.softplus(wu) - 1 - wu) * w / w.pow(2).sum(-1, keepdim=True).clamp_min(1e-12)
        a = torch.tanh((z * w).sum(-1, keepdim=True) + b)  # (K, B, 1)
        psi_u = (1 - a.pow(2)) * (w * u_hat).sum(-1, keepdim=True)  # psi(z) . u^, (K, B, 1)
        return z + u_hat * a, torch.log((1 + psi_u).abs().squeeze(-1).clamp_min(1e-12))


class MaskedLinear(nn.Linear):
    """A Linear layer whose weight is multiplied by a fixed 0/1 mask (MADE, Germain et al. 2015)."""

    def __init__(self, d_in: int, d_out: int, mask: torch.Tensor):
        super().__init__(d_in, d_out)
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class IAF(nn.Module):
    """One IAF step: a one-hidden-layer MADE on z with the context h added to its hidden layer."""

    def __init__(self, dz: int, context: int, hidden: int):
        super().__init__()
        d_in = torch.arange(1, dz + 1)  # input i has degree i
        d_hid = torch.arange(hidden) % dz  # 0 .. Dz-1: a degree-0 unit sees only h
        d_out = torch.arange(1, dz + 1).repeat(2)  # [m, s], output i has degree i
        self.dz = dz
        self.inp = MaskedLinear(dz, hidden, d_hid[:, None] >= d_in[None, :])
        self.ctx = nn.Linear(context, hidden, bias=False)
        self.out = MaskedLinear(hidden, 2 * dz, d_out[:, None] > d_hid[None, :])  # strictly earlier inputs

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hid = F.elu(self.inp(z) + self.ctx(h))  # (K, B, H)
        m, s = self.out(hid).chunk(2, -1)  # (K, B, Dz) each
        s = s + GATE_BIAS
        sigma = torch.sigmoid(s)
        return sigma * z + (1 - sigma) * m, -F.softplus(-s).sum(-1)  # log sigmoid(s) = -softplus(-s)


# one step of each flow from (Dz, context size); the config's and the CLI's list of flows (config/choices.py reads the
# keys, beside "none"): a new flow is its step class and one entry here
FLOWS: dict[str, Callable[[int, int], nn.Module]] = {
    "planar": Planar,
    "iaf": lambda dz, context: IAF(dz, context, max(2 * dz, context)),
}


class Flow(nn.Module):
    """N steps of one kind; forward(z0, h) -> (z_N, sum of log |det J|)."""

    def __init__(self, kind: str, steps: int, dz: int, context: int):
        super().__init__()
        if kind not in FLOWS:
            raise ValueError(f"unknown flow {kind!r} ({' or '.join(FLOWS)})")
        self.kind, self.steps = kind, nn.ModuleList(FLOWS[kind](dz, context) for _ in range(steps))

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = torch.zeros(z.shape[:-1], device=z.device, dtype=z.dtype)  # (K, B)
        for i, step in enumerate(self.steps):
            if self.kind == "iaf" and i > 0:
                z = z.flip(-1)  # a permutation: |det| = 1
            z, ld = step(z, h)
            log_det = log_det + ld
        return z, log_det
