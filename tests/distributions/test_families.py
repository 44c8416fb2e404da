"""Posterior families and priors: exact densities, reparameterised samples, analytic KL against Monte Carlo."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import kl_divergence

from vaelab import models
from vaelab.config.schema import Config
from vaelab.distributions import families
from vaelab.estimators.objectives import sgvb_a, sgvb_b
from vaelab.models import VAE, priors
from vaelab.models.networks import MLP

LOC, SCALE = 0.3, 1.7
SCIPY = {
    "gaussian": stats.norm(LOC, SCALE),
    "laplace": stats.laplace(LOC, SCALE),
    "logistic": stats.logistic(LOC, SCALE),
    "student-t": stats.t(families.STUDENT_DF, LOC, SCALE),
    "gumbel": stats.gumbel_r(LOC, SCALE),
}
# the pairs torch.distributions has a closed-form KL for; every other pair must fall back to Monte Carlo
ANALYTIC = {("gaussian", "normal"), ("gaussian", "laplace"), ("laplace", "normal"), ("laplace", "laplace"),
            ("gumbel", "normal")}
# dirichlet-laplace is a Gaussian (with the Laplace moments): the same pairs as normal
ANALYTIC |= {(q, "dirichlet-laplace") for q, p in set(ANALYTIC) if p == "normal"}
PAIRS = [(q, p) for q in families.POSTERIORS for p in priors.PRIORS if p != "vamp"]  # vamp is learned: test_vamp.py


def _one(kind):
    return families.location_scale(kind, torch.tensor([LOC], dtype=torch.float64),
                                   torch.tensor([SCALE], dtype=torch.float64))


@pytest.mark.parametrize("kind", families.POSTERIORS)
def test_log_density_matches_scipy(kind):
    z = torch.tensor([[-40.0], [-2.5], [0.0], [0.3], [4.0], [60.0]], dtype=torch.float64)
    expected = SCIPY[kind].logpdf(z.numpy()[:, 0])
    assert np.allclose(_one(kind).log_prob(z).numpy(), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", families.POSTERIORS)
def test_rsample_is_reparameterised_and_has_the_right_moments(kind):
    torch.manual_seed(0)
    loc = torch.tensor([LOC], requires_grad=True)
    scale = torch.tensor([SCALE], requires_grad=True)
    z = families.location_scale(kind, loc, scale).rsample((200_000,))  # (S, 1)
    z.mean().backward()
    assert loc.grad is not None and abs(float(loc.grad) - 1.0) < 1e-5  # dz/dloc = 1 for a location family
    d, z = SCIPY[kind], z.detach()
    assert abs(float(z.mean()) - d.mean()) < 0.03
    assert abs(float(z.var()) - d.var()) / d.var() < 0.05
    assert float(scale.grad) != 0.0


@pytest.mark.parametrize("q_kind,p_kind", PAIRS)
def test_analytic_kl_where_torch_knows_it_and_agrees_with_monte_carlo(q_kind, p_kind):
    torch.manual_seed(1)
    loc, scale = torch.randn(3, 4, dtype=torch.float64), torch.rand(3, 4, dtype=torch.float64) + 0.3
    q = families.location_scale(q_kind, loc, scale)
    p = priors.build(p_kind, 4, 0).double()()  # the models' own prior
    assert families.has_analytic_kl(q_kind, p) == ((q_kind, p_kind) in ANALYTIC)
    note = models.kl_note(Config(posterior=q_kind, prior=p_kind))
    if (q_kind, p_kind) not in ANALYTIC:
        with pytest.raises(NotImplementedError):
            kl_divergence(q, p)
        assert "Monte-Carlo" in note
        return
    assert note is None
    z = q.sample((400_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)  # (3,)
    assert torch.allclose(kl_divergence(q, p), mc, atol=0.03), (kl_divergence(q, p), mc)


def test_laplace_prior_density_is_exact():
    p = priors.build("laplace", 3, 0)()
    z = torch.tensor([[0.5, -2.0, 0.0]])
    assert torch.allclose(p.log_prob(z), torch.tensor([-(0.5 + 2.0 + 0.0) - 3 * math.log(2.0)]))


def _model(posterior, prior):
    torch.manual_seed(0)
    return VAE(MLP(6, (8,), 4), MLP(2, (8,), 6), data_dim=6, latent_dim=2, likelihood="bernoulli",
               posterior=posterior, prior=prior)


@pytest.mark.parametrize("q_kind,p_kind", [("logistic", "normal"), ("student-t", "laplace"), ("gumbel", "laplace")])
def test_sgvb_b_falls_back_to_sgvb_a_without_a_closed_form(q_kind, p_kind):
    model = _model(q_kind, p_kind)
    x = torch.randint(0, 2, (5, 6)).float()
    torch.manual_seed(3)
    b = sgvb_b(model, x, k=2)
    torch.manual_seed(3)
    a = sgvb_a(model, x, k=2)
    assert torch.equal(a.value, b.value)


@pytest.mark.parametrize("q_kind", families.POSTERIORS)
def test_every_family_gives_a_bound_below_log_px(q_kind):
    # On a 1-D linear-Gaussian model log p(x) is exact; every family's ELBO must lie below it.
    torch.manual_seed(0)
    model = VAE(MLP(3, (), 2), MLP(1, (), 3), data_dim=3, latent_dim=1, likelihood="gaussian", posterior=q_kind)
    w = torch.tensor([[1.0], [-0.5], [2.0]])
    with torch.no_grad():
        model.decoder[0].weight.copy_(w)
        model.decoder[0].bias.zero_()
    x = torch.randn(200, 3)
    exact = torch.distributions.MultivariateNormal(torch.zeros(3), w @ w.T + torch.eye(3)).log_prob(x)
    elbo = sgvb_a(model, x, k=2000).value
    assert float((elbo - exact).max()) < 0.0
