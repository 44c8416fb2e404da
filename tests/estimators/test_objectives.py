"""Estimators against exact answers: a linear-Gaussian model has a closed-form log p(x)."""

import math

import pytest
import torch
from linear_models import linear_gaussian
from torch.distributions import kl_divergence

from vaelab.distributions import densities as dist
from vaelab.estimators.evaluation import summarize
from vaelab.estimators.objectives import ae, iwae, sgvb_a, sgvb_b
from vaelab.models.networks import MLP
from vaelab.models.priors import StandardNormal

D, DZ = 6, 2


def test_sgvb_a_and_b_estimate_the_same_elbo():
    torch.manual_seed(0)
    model, x, _ = linear_gaussian()
    a = float(sgvb_a(model, x, k=4000).value.mean())
    b = float(sgvb_b(model, x, k=4000).value.mean())
    assert abs(a - b) < 0.05


def test_iwae_k1_equals_single_sample_sgvb_a():
    model, x, _ = linear_gaussian()
    torch.manual_seed(5)
    one = iwae(model, x, k=1).value
    torch.manual_seed(5)
    a = sgvb_a(model, x, k=1).value
    assert torch.allclose(one, a, atol=1e-5)


def test_iwae_is_stable_for_huge_log_weights():
    model, x, _ = linear_gaussian()
    bound = iwae(model, x * 1e3, k=50)  # log weights around -1e6: naive exp underflows to log 0
    assert torch.isfinite(bound.value).all() and torch.isfinite(bound.loss)


def test_warmup_changes_loss_not_reported_value():
    model, x, _ = linear_gaussian()
    torch.manual_seed(1)
    full = sgvb_b(model, x, k=1, beta=1.0)
    torch.manual_seed(1)
    warm = sgvb_b(model, x, k=1, beta=0.1)
    assert torch.equal(full.value, warm.value)
    assert float(warm.loss.detach()) < float(full.loss.detach())  # less KL is charged during warm-up


@pytest.mark.parametrize("scale", ["exp", "softplus", "relu"])
def test_analytic_kl_matches_monte_carlo(scale):
    torch.manual_seed(0)
    raw = torch.randn(4, 2 * 3)
    q = dist.gaussian_posterior(raw, scale)
    p = StandardNormal(3)()
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    assert torch.allclose(kl_divergence(q, p), mc, atol=0.03)


def test_posterior_scale_parameterisations():
    h = torch.tensor([[0.0, 0.0, -100.0]])
    raw = torch.cat([torch.zeros_like(h), h], -1)
    assert torch.allclose(dist.gaussian_posterior(raw, "exp").stddev, torch.tensor([[1.0, 1.0, math.exp(-50)]]))
    assert torch.allclose(dist.gaussian_posterior(raw, "softplus").stddev[0, :2], torch.full((2,), math.log(2.0)))
    assert torch.allclose(dist.gaussian_posterior(raw, "relu").stddev, torch.tensor([[0.05, 0.05, 0.05]]))


def test_likelihood_log_probs_are_exact():
    x = torch.tensor([[1.0, 0.0, 1.0]])
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    expected = (x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)).sum()
    assert torch.allclose(dist.likelihood("bernoulli", logits).log_prob(x), expected)
    mean = torch.tensor([[0.5, 0.5, 0.5]])
    unit = -0.5 * ((x - mean) ** 2).sum() - 1.5 * math.log(2 * math.pi)
    assert torch.allclose(dist.likelihood("gaussian", mean).log_prob(x), unit)
    logvar = torch.tensor([0.0, math.log(4.0), -20.0])  # the last is floored at MIN_LOGVAR
    lv = logvar.clamp(min=dist.MIN_LOGVAR)
    learned = (-0.5 * (x - mean) ** 2 / lv.exp() - 0.5 * lv - 0.5 * math.log(2 * math.pi)).sum()
    assert torch.allclose(dist.likelihood("gaussian-learned", mean, logvar).log_prob(x), learned)


def test_ae_objective_is_reconstruction_only():
    from vaelab.models import AE

    model = AE(MLP(D, (), DZ), MLP(DZ, (), D), data_dim=D, latent_dim=DZ, likelihood="gaussian")
    x = torch.randn(10, D)
    with torch.no_grad():
        xr = model.decoder(model.encoder(x))
    expected = (-0.5 * (x - xr) ** 2 - 0.5 * math.log(2 * math.pi)).sum(1)
    assert torch.allclose(ae(model, x).value, expected, atol=1e-5)
    assert "nll" not in summarize(model, x, k=10)  # no likelihood claimed for a plain AE
