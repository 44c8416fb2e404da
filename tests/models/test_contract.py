"""The model contract: estimators, sampling and plots go through the model, and hold for models they never saw."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from linear_models import TwoLayer, analytic_elbo, one_layer
from scipy import stats

import vaelab
from vaelab import api, models
from vaelab.config.choices import MODELS, PRIORS
from vaelab.errors import VaelabError
from vaelab.estimators.evaluation import point_bounds, summarize
from vaelab.estimators.objectives import iwae, sgvb_a, sgvb_b
from vaelab.reports import views
from vaelab.runtime import streams


def _two_layer(n: int = 800):
    torch.manual_seed(0)
    model = TwoLayer(8, 4, 3, torch.Generator().manual_seed(0))
    model.set_posterior(inflate1=2.0, inflate2=2.0)  # diagonal and too wide: the gaps are real
    x = model.marginal().sample((n,))
    return model, x, model.marginal().log_prob(x)


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of b - a over the points and its standard error (independent samples for a and b)."""
    d = b - a
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def test_two_layer_model_iwae_5000_is_within_0_05_nat_of_exact_log_px():
    # A model with two stochastic layers that objectives/evaluate never saw: log w = log p(x, z1, z2) - log q.
    model, x, log_px = _two_layer(200)
    pb = point_bounds(model, x, 5000, seed=1)
    assert abs(float(pb.iwae.mean()) - float(log_px.mean())) < 0.05
    assert float(pb.elbo.mean()) < float(log_px.mean()) - 5.0  # the gap the estimator had to close


def test_two_layer_bounds_rise_in_k_towards_exact_with_independent_samples():
    # 3,200 points: the rise from IWAE-100 to IWAE-1000 is ~0.05 nat, ~4 standard errors at 800 points (so a
    # fair draw failed about half the time), ~8 here
    model, x, log_px = _two_layer(3200)
    exact = log_px.numpy()
    ks = (1, 10, 100, 1000)
    # a different seed per k: no two bounds share samples, so Jensen alone cannot order them
    runs = {k: point_bounds(model, x, k, seed=100 + i) for i, k in enumerate(ks)}
    elbo = point_bounds(model, x, 1000, seed=99).elbo  # ELBO from 1000 samples, independent of all the above
    previous = elbo
    for k in ks[1:]:
        gain, se = _paired(previous, runs[k].iwae)
        assert gain > 4 * se, (k, gain, se)  # each step up in k is a real rise, not Monte Carlo noise
        previous = runs[k].iwae
    slack, se = _paired(runs[1000].iwae, exact)
    assert slack > -4 * se  # IWAE-1000 does not overshoot log p(x)
    one, se1 = _paired(elbo, runs[1].iwae)
    assert abs(one) < 4 * se1  # IWAE-1 is an unbiased ELBO estimate


def test_two_layer_model_runs_through_every_estimator_unchanged():
    # sgvb-b falls back to Monte Carlo (analytic_kl is None); given the same samples (the evaluation's streams,
    # runtime/streams.py), every objective computes the evaluator's ELBO exactly, and IWAE-1 its one-sample log w
    model, x, _ = _two_layer(300)
    per_point = point_bounds(model, x, 1000, seed=4).elbo  # (B,)
    elbo, log_w = per_point.mean(), point_bounds(model, x, 1, seed=5).elbo.mean()
    with torch.no_grad():
        values = {}
        for f, k, seed in ((sgvb_a, 1000, 4), (sgvb_b, 1000, 4), (iwae, 1, 5)):
            with streams.block(seed, 0, 0):
                values[f.__name__] = float(f(model, x, k=k).value.mean())
    assert values["sgvb_a"] == pytest.approx(elbo, rel=1e-12) and values["sgvb_b"] == pytest.approx(elbo, rel=1e-12)
    assert values["iwae"] == pytest.approx(log_w, rel=1e-12)
    torch.manual_seed(3)
    with torch.no_grad():  # and torch's own draws estimate the same ELBO: within 4 paired standard errors
        fresh = sgvb_a(model, x, k=1000).value.numpy()  # (B,) each a mean over 1000 samples
    gap, se = _paired(per_point, fresh)
    assert abs(gap) < 4 * se


def test_elbo_matches_its_analytic_value_on_the_linear_gaussian_vae():
    torch.manual_seed(0)
    model, marginal = one_layer(6, 3, inflate=3.0)
    x = marginal.sample((300,))
    with torch.no_grad():
        exact = analytic_elbo(model, x)  # (B,) closed-form E_q log p(x|z) - KL
    pb = point_bounds(model, x, 4000, seed=2)
    assert abs(float(pb.elbo.mean()) - float(exact.mean())) < 0.01  # Monte Carlo standard error ~0.003
    with torch.no_grad():
        b = sgvb_b(model, x, k=4000)  # closed-form KL, Monte-Carlo reconstruction
    assert abs(float(b.value.mean()) - float(exact.mean())) < 0.01
    assert float(exact.mean()) < float(marginal.log_prob(x).mean()) - 0.5  # the widened q leaves a gap


def test_exact_posterior_makes_every_bound_tight_with_a_2d_latent_and_learned_variances():
    # W with Sigma^{-1/2} W having orthogonal columns: the exact posterior is diagonal even in 2-D.
    g = torch.Generator().manual_seed(3)
    d = 6
    v = 0.3 + 1.5 * torch.rand(d, generator=g)  # per-dimension noise variances, the model's logvar
    u, _ = torch.linalg.qr(torch.randn(d, 2, generator=g))
    w = torch.diag(v.sqrt()) @ u @ torch.diag(torch.tensor([2.0, 0.7]))
    model, _ = one_layer(d, 2, inflate=1.0, likelihood="gaussian-learned", noise_var=v)
    with torch.no_grad():
        model.decoder[0].weight.copy_(w)
        model.decoder[0].bias.zero_()
        s = torch.linalg.inv(torch.eye(2) + w.T @ torch.diag(1 / v) @ w)
        assert abs(float(s[0, 1])) < 1e-6  # diagonal, so a diagonal q can be exact
        model.encoder[0].weight.zero_()
        model.encoder[0].weight[:2] = s @ w.T @ torch.diag(1 / v)
        model.encoder[0].bias.zero_()
        model.encoder[0].bias[2:] = torch.diagonal(s).log()
    marginal = torch.distributions.MultivariateNormal(torch.zeros(d), w @ w.T + torch.diag(v))
    torch.manual_seed(0)
    x = marginal.sample((50,))
    exact = marginal.log_prob(x).double().numpy()
    pb = point_bounds(model, x, 7, seed=0)
    assert np.abs(pb.elbo - exact).max() < 1e-4 and np.abs(pb.iwae - exact).max() < 1e-4
    assert np.abs(exact - exact.mean()).max() > 1.0  # the points differ: a constant could not pass


def test_nll_5000_within_0_02_nat_of_exact_when_the_elbo_gap_is_several_nats():
    torch.manual_seed(0)
    model, marginal = one_layer(8, 5, inflate=4.0, seed=1)
    x = marginal.sample((300,))
    exact = -float(marginal.log_prob(x).mean())
    r = summarize(model, x, 5000, seed=1)
    assert -r["elbo"] - exact > 3.0  # several nats for importance sampling to close
    assert abs(r["nll"] - exact) < 0.02


def _laplace_model(latent_dim: int):
    c = vaelab.Config(prior="laplace", latent_dim=latent_dim, hidden=(8,))
    return models.build(c, (16,))


def _recording(model):
    """Make model.decode remember every z it is given."""
    seen, decode = [], model.decode
    model.decode = lambda z: (seen.append(z.detach().clone()), decode(z))[1]
    return seen


def test_laplace_prior_latents_follow_the_laplace():
    model = _laplace_model(4)
    z = model.sample_latent(4000, torch.Generator().manual_seed(0)).numpy().ravel()
    assert stats.kstest(z, stats.laplace.cdf).pvalue > 0.01
    assert stats.kstest(z, stats.norm.cdf).pvalue < 1e-6  # N(0, I) draws would fail the first check
    seen = _recording(model)
    x = api.sample(model, 3000, seed=1)
    assert x.shape == (3000, 16) and stats.kstest(seen[0].numpy().ravel(), stats.laplace.cdf).pvalue > 0.01


def _view(model, tmp_path, x=None):
    """A RunView around a model, without a run folder."""
    view = object.__new__(views.RunView)
    view.model, view.device, view.out, view.hw = model, torch.device("cpu"), tmp_path, (4, 4)
    view.x = x if x is not None else torch.rand(50, 16)
    return view


def test_samples_plot_decodes_the_models_own_prior(tmp_path):
    model = _laplace_model(8)
    seen = _recording(model)
    _view(model, tmp_path).samples()
    z = seen[0].numpy().ravel()  # 64 x 8 draws
    assert stats.kstest(z, stats.laplace.cdf).pvalue > 0.01
    assert abs(np.abs(z).mean() - 1.0) < 0.15  # E|z| = 1 under Laplace(0, 1), 0.80 under N(0, 1); s.e. 0.044


def test_manifold_grid_uses_the_priors_inverse_cdf(tmp_path):
    model = _laplace_model(2)
    seen = _recording(model)
    _view(model, tmp_path).manifold(n=9)
    axis = np.unique(seen[0][:, 0].numpy())
    expect = stats.laplace.ppf((np.arange(9) + 0.5) / 9)
    assert np.allclose(np.sort(axis), expect, atol=1e-5)


def test_manifold_grid_falls_back_to_aggregate_posterior_quantiles(tmp_path):
    # The two-layer model's p(z1) is a correlated Gaussian: no per-dimension inverse CDF.
    model = TwoLayer(16, 2, 2, torch.Generator().manual_seed(0))
    model.set_posterior(1.0, 1.0)
    x = model.marginal().sample((200,))
    assert model.latent_quantiles(torch.tensor([0.5])) is None
    codes = _view(model, tmp_path, x).codes()
    q, how = views.grid_quantiles(model, 9, lambda: codes)
    assert "aggregate posterior" in how
    assert np.allclose(q, np.quantile(codes, (np.arange(9) + 0.5) / 9, axis=0))


@pytest.mark.parametrize("name", ["ae", "dae"])
def test_autoencoders_are_reconstruction_only(name, tmp_path):
    model = models.build(vaelab.Config(model=name, hidden=(8,), latent_dim=2), (16,))
    assert not hasattr(model, "encode") and not hasattr(model, "prior") and not models.is_latent_variable(model)
    x = torch.rand(20, 16).round()
    r = summarize(model, x, k=10)
    assert "nll" not in r and "elbo" not in r
    with torch.no_grad():
        expect = model.decode(model.embed(x)).log_prob(x).mean()
    assert r["recon"] == pytest.approx(float(expect), rel=1e-5)
    for kind in ("samples", "manifold"):
        with pytest.raises(VaelabError, match="autoencoder"):
            _view(model, tmp_path).make(kind)
    with pytest.raises(VaelabError):
        api.sample(model, 4)


def test_the_command_lines_names_are_the_registries_keys():
    assert PRIORS == tuple(models.PRIORS) and MODELS == tuple(models.MODELS)  # read from the source, in order


class MixturePrior(torch.nn.Module):
    """A learned mixture of Gaussians: a prior with parameters and no closed-form KL (a VampPrior stand-in)."""

    def __init__(self, latent_dim: int, data_dim: int):
        super().__init__()
        self.locs = torch.nn.Parameter(torch.linspace(-2, 2, 3)[:, None].repeat(1, latent_dim))  # (C, Dz)

    def forward(self, model=None):
        comp = torch.distributions.Independent(torch.distributions.Normal(self.locs, torch.ones_like(self.locs)), 1)
        return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=torch.zeros(3)), comp)


def test_a_registered_prior_with_parameters_is_used_everywhere(monkeypatch):
    monkeypatch.setitem(models.PRIORS, "mixture", MixturePrior)
    model = models.VAE(torch.nn.Linear(5, 4), torch.nn.Linear(2, 5), data_dim=5, latent_dim=2, prior="mixture",
                       likelihood="gaussian")
    assert "latent_prior.locs" in dict(model.named_parameters())  # trained with the rest
    x = torch.randn(30, 5)
    q = model.encode(x)
    assert model.analytic_kl(q) is None and model.latent_quantiles(torch.tensor([0.5])) is None
    z = model.sample_latent(20000, torch.Generator().manual_seed(0))
    assert abs(float(z[:, 0].var()) - (1 + 8 / 3)) < 0.15  # Var = 1 + Var of the means {-2, 0, 2}
    torch.manual_seed(0)
    b = sgvb_b(model, x, k=1)  # falls back to Monte Carlo with the mixture's log-density
    torch.manual_seed(0)
    zq = q.rsample((1,))
    expect = model.decode(zq).log_prob(x) + MixturePrior.forward(model.latent_prior).log_prob(zq) - q.log_prob(zq)
    assert torch.allclose(b.value, expect[0].detach(), atol=1e-5)
    b.loss.backward()
    assert model.latent_prior.locs.grad.abs().sum() > 0
