"""The hierarchical VAE, given linear layers, IS a linear-Gaussian model with an exact log p(x):
its bounds are checked against it."""

from __future__ import annotations

import math

import numpy as np
import torch
from linear_models import D1, D2, linear_hvae
from torch.distributions import kl_divergence

from vaelab.estimators.evaluation import layer_bounds, point_bounds, summarize
from vaelab.estimators.objectives import iwae, sgvb_a, sgvb_b
from vaelab.models.priors import StandardNormal


def _data(n: int, inflate: float = 2.0):
    model, marginal, prior = linear_hvae(inflate)
    torch.manual_seed(1)
    x = marginal.sample((n,))
    return model, x, marginal.log_prob(x), prior


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = b - a
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def test_linear_hvae_nll_5000_is_within_0_05_nat_of_exact():
    model, x, log_px, _ = _data(300)
    r = summarize(model, x, 5000, seed=1)
    exact = -float(log_px.mean())
    assert abs(r["nll"] - exact) < 0.05
    assert -r["elbo"] - exact > 1.0  # the inflated q leaves a gap for importance sampling to close


def test_linear_hvae_bounds_rise_in_k_towards_exact_with_independent_samples():
    model, x, log_px, _ = _data(800, inflate=4.0)
    runs = {k: point_bounds(model, x, k, seed=100 + i) for i, k in enumerate((3, 30, 300, 1000))}
    previous = point_bounds(model, x, 1000, seed=99).elbo  # ELBO, independent of all the above
    for k in (3, 30, 300):
        gain, se = _paired(previous, runs[k].iwae)
        assert gain > 4 * se, (k, gain, se)  # ELBO < IWAE-3 < IWAE-30 < IWAE-300, each a real rise
        previous = runs[k].iwae
    slack, se = _paired(runs[1000].iwae, log_px.double().numpy())
    assert slack > -4 * se  # IWAE-1000 does not overshoot log p(x)


def test_linear_hvae_runs_through_every_estimator_unchanged():
    model, x, _, _ = _data(300)
    elbo = point_bounds(model, x, 1000, seed=4).elbo.mean()
    torch.manual_seed(3)
    with torch.no_grad():
        a, b = (float(f(model, x, k=1000).value.mean()) for f in (sgvb_a, sgvb_b))
        one = iwae(model, x, k=1).value
    assert abs(a - elbo) < 0.05 and abs(b - elbo) < 0.05  # sgvb-b ran as sgvb-a: no closed-form KL
    assert abs(float(one.mean()) - elbo) < 4 * float(one.std()) / math.sqrt(len(one))


def test_per_layer_kl_matches_closed_forms_and_sums_to_the_kl():
    model, x, _, _ = _data(300)
    got = layer_bounds(model, x, 100, seed=0)["kl_layers"]
    with torch.no_grad():
        q2 = model.encode(x)
        top = kl_divergence(q2, StandardNormal(D2)()).mean()  # KL(q(z2|x) || N(0, I)), closed form
        z2 = q2.sample((400,))  # (400, B, D2)
        q1 = model._gaussian(model.q_nets[0](x, z2))
        bottom = kl_divergence(q1, model.conditional(0, z2)).mean()  # E_q(z2|x) KL(q(z1|x,z2) || p(z1|z2))
    assert abs(got["z2"] - float(top)) < 0.05 and abs(got["z1"] - float(bottom)) < 0.05
    assert min(float(top), float(bottom)) > 0.3  # both layers carry information
    r = summarize(model, x, 2000, seed=1)
    assert abs(r["kl"] - sum(r["kl_layers"].values())) < 0.1
    assert r["active_units_layers"] == {"z1": D1, "z2": D2}


def test_hvae_prior_is_the_exact_joint_of_its_layers_and_samples_follow_it():
    model, _, _, prior = _data(10)
    z = 2 * torch.randn(5, 7, D1 + D2)
    with torch.no_grad():
        assert torch.allclose(model.log_prior(z), prior.log_prob(z), atol=1e-4)
        assert torch.allclose(model.prior().log_prob(z), prior.log_prob(z), atol=1e-4)
        n = 40000
        s = model.sample_latent(n, torch.Generator().manual_seed(0)).double()
    var = torch.diagonal(prior.covariance_matrix).double()
    assert torch.all((s.mean(0) - prior.mean.double()).abs() < 4 * (var / n).sqrt())  # 4 standard errors
    assert torch.allclose(torch.cov(s.T), prior.covariance_matrix.double(), atol=0.05 * float(var.max()))
    # z1 and z2 correlated: the ancestral order matters
    assert float(prior.covariance_matrix[:D1, D1:].abs().max()) > 0.5
