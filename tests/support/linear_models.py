"""Test-only models whose log p(x) is known in closed form: linear-Gaussian, one and two stochastic layers."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal

import vaelab
from vaelab import models
from vaelab.models import VAE, LatentVariableModel
from vaelab.models.networks import MLP
from vaelab.runtime import split_noise as noise


def _diag(mean: torch.Tensor, std: torch.Tensor):
    return Independent(Normal(mean, std, validate_args=False), 1, validate_args=False)


class TwoLayer(LatentVariableModel):
    """p(z2) = N(0, I), p(z1|z2) = N(A z2 + a, diag s1^2), p(x|z1) = N(W z1 + b, I); q(z1|x) q(z2|z1) diagonal.

    z is (z1, z2) packed along the last dimension, (K, B, D1 + D2); only this class reads it.
    """

    def __init__(self, d: int, d1: int, d2: int, generator: torch.Generator):
        super().__init__()
        self.data_dim, self.latent_dim, self.d1 = d, d1, d1  # the point code is z1
        r = lambda *s: torch.randn(*s, generator=generator, dtype=torch.float64)  # noqa: E731
        self.A, self.a, self.s1 = r(d1, d2), r(d1), 0.3 + torch.rand(d1, generator=generator, dtype=torch.float64)
        self.W, self.b = r(d, d1), r(d)
        self.q1 = nn.Linear(d, 2 * d1).double()  # x -> [mean of z1, log std of z1]
        self.q2 = nn.Linear(d1, 2 * d2).double()  # z1 -> [mean of z2, log std of z2]

    def marginal(self) -> MultivariateNormal:
        """p(x) = N(W a + b, W (A A^T + S1) W^T + I), the exact answer."""
        p1 = self.A @ self.A.T + torch.diag(self.s1 ** 2)
        return MultivariateNormal(self.W @ self.a + self.b, self.W @ p1 @ self.W.T + torch.eye(self.data_dim))

    @torch.no_grad()
    def set_posterior(self, inflate1: float, inflate2: float) -> None:
        """q = the exact posterior's means with its diagonal variances times inflate (p(z2|z1, x) = p(z2|z1))."""
        p1 = self.A @ self.A.T + torch.diag(self.s1 ** 2)
        cov1 = torch.linalg.inv(torch.linalg.inv(p1) + self.W.T @ self.W)  # Cov(z1 | x)
        self.q1.weight.zero_()
        self.q1.weight[:self.d1] = cov1 @ self.W.T
        self.q1.bias[:self.d1] = cov1 @ (torch.linalg.solve(p1, self.a) - self.W.T @ self.b)
        self.q1.bias[self.d1:] = 0.5 * torch.log(torch.diagonal(cov1) * inflate1)
        s1inv = torch.diag(self.s1 ** -2)
        cov2 = torch.linalg.inv(torch.eye(self.A.shape[1]) + self.A.T @ s1inv @ self.A)  # Cov(z2 | z1)
        gain = cov2 @ self.A.T @ s1inv
        self.q2.weight.zero_()
        self.q2.weight[:gain.shape[0]] = gain
        self.q2.bias[:gain.shape[0]] = -gain @ self.a
        self.q2.bias[gain.shape[0]:] = 0.5 * torch.log(torch.diagonal(cov2) * inflate2)

    def _q2(self, z1: torch.Tensor):
        mean, log_std = self.q2(z1).chunk(2, -1)
        return _diag(mean, log_std.exp())

    def _p1(self, z2: torch.Tensor):
        return _diag(z2 @ self.A.T + self.a, self.s1.expand(*z2.shape[:-1], -1))

    def encode(self, x):
        mean, log_std = self.q1(x).chunk(2, -1)
        return _diag(mean, log_std.exp())

    def posterior_sample(self, x, k, q=None):
        q = self.encode(x) if q is None else q
        z1 = noise.rsample(q, k)  # (K, B, D1); through noise, so evaluation draws from its per-point streams
        q2 = self._q2(z1)
        z2 = noise.rsample_each(q2)  # (K, B, D2)
        return torch.cat([z1, z2], -1), q.log_prob(z1) + q2.log_prob(z2)

    def decode(self, z):
        return _diag(z[..., :self.d1] @ self.W.T + self.b, torch.ones(self.data_dim, dtype=torch.float64))

    def log_prior(self, z):
        z1, z2 = z[..., :self.d1], z[..., self.d1:]
        return _diag(torch.zeros_like(z2), torch.ones_like(z2)).log_prob(z2) + self._p1(z2).log_prob(z1)

    def prior(self):
        """p(z1) = N(a, A A^T + S1), the marginal of the code decode reads."""
        return MultivariateNormal(self.a, self.A @ self.A.T + torch.diag(self.s1 ** 2))

    def analytic_kl(self, q):
        return None

    def sample_latent(self, n, generator=None):
        z2 = torch.randn(n, self.A.shape[1], generator=generator, dtype=torch.float64)
        z1 = self.a + z2 @ self.A.T + self.s1 * torch.randn(n, self.d1, generator=generator, dtype=torch.float64)
        return torch.cat([z1, z2], -1)


def one_layer(d: int, dz: int, inflate: float, seed: int = 0, likelihood: str = "gaussian", noise_var=None):
    """The vaelab VAE as p(z) = N(0, I), p(x|z) = N(W z + b, diag(v)), q = diag of the exact posterior, widened.

    Returns the model, W, b, v and the exact posterior (mean map A, offset c, covariance S).
    With likelihood 'gaussian-learned', v is the model's per-dimension variance `noise_var`.
    """
    g = torch.Generator().manual_seed(seed)
    W, b = torch.randn(d, dz, generator=g), torch.randn(d, generator=g)
    v = torch.ones(d) if noise_var is None else noise_var
    model = VAE(MLP(d, (), 2 * dz), MLP(dz, (), d), data_dim=d, latent_dim=dz, likelihood=likelihood)
    S = torch.linalg.inv(torch.eye(dz) + W.T @ torch.diag(1 / v) @ W)  # exact posterior covariance
    A = S @ W.T @ torch.diag(1 / v)  # exact posterior mean is A (x - b)
    with torch.no_grad():
        model.decoder[0].weight.copy_(W)
        model.decoder[0].bias.copy_(b)
        enc = model.encoder[0]
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[:dz] = A
        enc.bias[:dz] = -A @ b
        enc.bias[dz:] = torch.log(torch.diagonal(S) * inflate)  # logvar head: sigma = exp(logvar / 2)
        if model.logvar is not None:
            model.logvar.copy_(v.log())
    marginal = MultivariateNormal(b, W @ torch.diag(torch.ones(dz)) @ W.T + torch.diag(v))
    return model, marginal


def analytic_elbo(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """E_q[log p(x|z)] - KL(q || N(0, I)) in closed form for the linear-Gaussian VAE with unit noise, (B,)."""
    q = model.encode(x)
    m, var = q.mean, q.variance  # (B, Dz)
    W, b = model.decoder[0].weight, model.decoder[0].bias
    resid = x - m @ W.T - b  # (B, D)
    expected = (-0.5 * (resid.pow(2).sum(-1) + (var * W.pow(2).sum(0)).sum(-1))
                - 0.5 * x.shape[-1] * math.log(2 * math.pi))
    kl = 0.5 * (var + m.pow(2) - 1 - var.log()).sum(-1)
    return expected - kl


def linear_gaussian(inflate: float = 1.5, seed: int = 0, d: int = 6, dz: int = 2):
    """p(z)=N(0,I), p(x|z)=N(Wz+b, I) so p(x)=N(b, WW^T+I); q is a diagonal, slightly wide posterior.
    Returns the model with the exact posterior mean (and a variance inflated by `inflate`), 300 points x, log p(x)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d, dz, generator=g)
    b = torch.randn(d, generator=g)
    model = VAE(MLP(d, (), 2 * dz), MLP(dz, (), d), data_dim=d, latent_dim=dz, likelihood="gaussian")
    sigma = torch.linalg.inv(torch.eye(dz) + W.T @ W)  # exact posterior covariance
    A = sigma @ W.T  # exact posterior mean is A (x - b)
    with torch.no_grad():
        dec = model.decoder[0]
        dec.weight.copy_(W)
        dec.bias.copy_(b)
        enc = model.encoder[0]
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[:dz] = A
        enc.bias[:dz] = -A @ b
        enc.bias[dz:] = torch.log(torch.diagonal(sigma) * inflate)  # logvar head, sigma = exp(logvar/2)
    marginal = MultivariateNormal(b, W @ W.T + torch.eye(d))
    x = marginal.sample(torch.Size([300]))
    return model, x, marginal.log_prob(x)


D, D1, D2 = 6, 3, 2  # linear_hvae's data, z1 and z2 sizes


def _condition(m, s, keep, given):
    """Gain G and covariance C of y[keep] given y[given] for y ~ N(m, s): mean m_k + G (y_g - m_g)."""
    gain = s[np.ix_(keep, given)] @ np.linalg.inv(s[np.ix_(given, given)])
    return gain, s[np.ix_(keep, keep)] - gain @ s[np.ix_(given, keep)]


def linear_hvae(inflate: float = 2.0, seed: int = 0):
    """models.build's hvae with hidden=() set to p(z2) = N(0, I), p(z1|z2) = N(A z2 + a, S1),
    p(x|z1, z2) = N(W [z1; z2] + b, I).

    q(z2|x) and q(z1|x, z2) get the exact conditionals' means and their variances' diagonals times inflate.
    Returns the model, the exact p(x) and the prior of the packed (z1, z2).
    """
    torch.manual_seed(seed)
    model = models.build(vaelab.Config(model="hvae", hidden=(), latent_dim=(D1, D2), likelihood="gaussian"), (D,))
    r = np.random.default_rng(seed)
    a_mat, a, s1 = r.normal(size=(D1, D2)), r.normal(size=D1), 0.4 + r.random(D1)
    w, b = r.normal(size=(D, D1 + D2)), r.normal(size=D)
    # y = (z1, z2, x) = L e + m with e = (e1, e2, noise) ~ N(0, I)
    lin = np.zeros((D1 + D2 + D, D1 + D2 + D))
    lin[:D1, :D1], lin[:D1, D1:D1 + D2] = np.diag(s1), a_mat
    lin[D1:D1 + D2, D1:D1 + D2] = np.eye(D2)
    lin[D1 + D2:] = w @ lin[:D1 + D2] + np.hstack([np.zeros((D, D1 + D2)), np.eye(D)])
    m = np.concatenate([a, np.zeros(D2), w[:, :D1] @ a + b])
    s = lin @ lin.T
    z1, z2, x = np.arange(D1), np.arange(D1, D1 + D2), np.arange(D1 + D2, D1 + D2 + D)
    g2, c2 = _condition(m, s, z2, x)  # q(z2 | x)
    g1, c1 = _condition(m, s, z1, np.concatenate([z2, x]))  # q(z1 | z2, x)
    t = lambda v: torch.as_tensor(v, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.p_nets[0][0].weight[:D1] = t(a_mat)
        model.p_nets[0][0].bias.copy_(t(np.concatenate([a, 2 * np.log(s1)])))  # [mean, log variance]
        model.decoder[0].weight.copy_(t(w))
        model.decoder[0].bias.copy_(t(b))
        model.encoder[0].weight[:D2] = t(g2)
        model.encoder[0].bias.copy_(t(np.concatenate([m[z2] - g2 @ m[x], np.log(np.diag(c2) * inflate)])))
        q1 = model.q_nets[0]
        q1.b.weight[:D1], q1.a.weight[:D1] = t(g1[:, :D2]), t(g1[:, D2:])
        q1.a.bias.copy_(t(np.concatenate([m[z1] - g1 @ m[np.concatenate([z2, x])], np.log(np.diag(c1) * inflate)])))
    mz = slice(0, D1 + D2)
    marginal = MultivariateNormal(t(m[x]), t(s[np.ix_(x, x)]))
    return model, marginal, MultivariateNormal(t(m[mz]), t(s[mz, mz]))
