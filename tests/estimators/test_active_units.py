"""Active units (Burda et al. 2016): Cov_x(E_q[z_u]) > 0.01, checked on models whose E_q[z|x] is known by hand.

A Gaussian posterior's mean is encode(x).mean; a flow posterior's E_q[z_K] and an HVAE's lower layers'
E_q[z_l] are averages over posterior draws, so evaluation estimates them by sampling.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from linear_models import D1, D2, linear_hvae, one_layer

import vaelab
from vaelab import models
from vaelab.estimators.evaluation import active_units, mean_spread, sampled_spread, summarize


def test_a_unit_is_active_when_its_mean_varies_by_more_than_0_01():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1000, 1))
    base = (base - base.mean()) / base.std()  # variance exactly 1
    means = base * np.sqrt([1.0, 0.1, 0.02, 0.005, 0.0])  # (1000, 5): spreads 1, 0.1, 0.02, 0.005, 0
    assert np.allclose(mean_spread(means), [1.0, 0.1, 0.02, 0.005, 0.0])
    assert active_units(mean_spread(means)) == 3


def test_sampled_means_lose_their_sampling_noise():
    # 400 points whose true means spread by 0.04 in one dimension and not at all in the other, each mean
    # estimated from 50 draws of variance 1: the raw spread of the estimates is ~0.06 and ~0.02, both over 0.01
    rng = np.random.default_rng(1)
    true = np.stack([rng.choice([-0.2, 0.2], 400), np.zeros(400)], 1)  # (400, 2)
    draws = true[None] + rng.normal(size=(50, 400, 2))  # (50, 400, 2)
    est, var = draws.mean(0), draws.var(0, ddof=1)
    assert (est.var(0) > 0.015).all()
    spread = mean_spread(est, var, 50)
    assert spread[0] == pytest.approx(true[:, 0].var(), abs=0.01) and abs(spread[1]) < 0.005
    assert active_units(spread) == 1


def test_gaussian_vae_counts_the_units_its_encoder_moves():
    # the linear VAE of linear_models with its encoder's mean map cut to known rows: E_q[z|x] = A x + c
    model, marginal = one_layer(6, 4, inflate=1.5)
    torch.manual_seed(0)
    x = marginal.sample((500,))
    with torch.no_grad():
        enc = model.encoder[0]
        mean_rows = enc.weight[:4]
        spread = (x @ mean_rows.T).double().var(0, unbiased=False)  # (4,) before rescaling
        target = torch.tensor([1.0, 0.1, 0.001, 0.0], dtype=torch.float64)  # active, active, inactive, inactive
        mean_rows *= (target / spread).sqrt().float()[:, None]
        hand = (x @ mean_rows.T).double().var(0, unbiased=False)
    assert torch.allclose(hand, target, rtol=1e-4, atol=1e-9)
    r = summarize(model, x, 10, seed=0)
    assert r["active_units"] == 2 and "closed form" in r["estimators"]["active_units"]


def _planar_vae(c: float) -> torch.nn.Module:
    """A planar-flow VAE on 4 inputs with q0 = N(0, I) for every x and one step z' = z + (0, c) tanh(z_1 + b(x)),
    b(x) = 2 x_0 - 1: E_q[z'_1] = 0, E_q[z'_2] = c g(b(x)) with g(b) = E tanh(e + b), e ~ N(0, 1)."""
    cfg = vaelab.Config(model="vae", flow="planar", flow_steps=1, hidden=(), latent_dim=2, likelihood="gaussian")
    model = models.build(cfg, (4,))
    with torch.no_grad():
        enc = model.encoder[0]  # x -> [loc (2), scale pre-activation (2), h (4)]
        enc.weight.zero_()
        enc.bias.zero_()  # loc 0, scale exp(0 / 2) = 1
        enc.weight[4, 0], enc.bias[4] = 2.0, -1.0  # h_0 = 2 x_0 - 1
        step = model.flow.steps[0].params  # h -> [u (2), w (2), b]
        step.weight.zero_()
        step.weight[4, 0] = 1.0  # b = h_0
        # u_1 = log(e - 1) makes u^ = u + (softplus(w.u) - 1 - w.u) w / |w|^2 exactly (0, c) for w = (1, 0)
        step.bias.copy_(torch.tensor([math.log(math.e - 1), c, 1.0, 0.0, 0.0]))
    return model


def test_flow_active_units_use_the_mean_of_z_K_not_the_base_mean():
    c = 0.5
    model = _planar_vae(c)
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(400, 4, generator=g) < 0.5).float()
    # by hand: g(b) by 40-point Gauss-Hermite quadrature, g(-1) = -g(1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    g1 = float((weights * np.tanh(nodes + 1.0)).sum() / math.sqrt(2 * math.pi))
    mean2 = c * g1 * (2 * x[:, 0].double().numpy() - 1)  # E_q[z'_2 | x], (400,)
    hand = np.array([0.0, mean2.var()])
    assert 0.05 < hand[1] < 0.2  # active at the 0.01 threshold, and clear of it on either side
    assert np.allclose(sampled_spread(model, x, 100, seed=0), hand, atol=0.01)
    with torch.no_grad():
        assert active_units(mean_spread(model.encode(x).mean.numpy())) == 0  # the base mean never moves
    r = summarize(model, x, 10, seed=0)
    assert r["active_units"] == 1 and "Monte Carlo" in r["estimators"]["active_units"]


def test_hvae_counts_every_layer_and_reports_each():
    model, marginal, _ = linear_hvae()
    torch.manual_seed(1)
    x = marginal.sample((300,))
    q1 = model.q_nets[0]  # E_q[z1 | x, z2] = Ga x + Gb z2 + c1 (linear: hidden = ())
    with torch.no_grad():
        g2 = model.encoder[0].weight[:D2]  # E_q[z2 | x] = G2 x + c2
        g2[1] = 0.0  # z2's second unit ignores x
        g2[0] *= math.sqrt(0.1 / float((x @ g2[0]).var(unbiased=False)))  # spread 0.1
        q1.a.weight[2], q1.b.weight[2] = 0.0, 0.0  # z1's third unit ignores x and z2
        mean_z2 = x @ g2.T  # (N, D2), up to a constant
        mean_z1 = x @ q1.a.weight[:D1].T + mean_z2 @ q1.b.weight[:D1].T  # (N, D1): E over z2 of a linear map
    spread_z2 = mean_z2.double().var(0, unbiased=False).numpy()
    spread_z1 = mean_z1.double().var(0, unbiased=False).numpy()
    assert spread_z2[0] == pytest.approx(0.1, rel=1e-4) and spread_z2[1] == 0 and spread_z1[2] == 0
    assert min(spread_z1[:2]) > 0.05  # clear of the threshold
    expect = {"z1": int((spread_z1 > 0.01).sum()), "z2": int((spread_z2 > 0.01).sum())}
    assert expect == {"z1": 2, "z2": 1}
    r = summarize(model, x, 200, seed=0)
    assert r["active_units_layers"] == expect
    assert r["active_units"] == 3 and "all layers" in r["estimators"]["active_units"]
