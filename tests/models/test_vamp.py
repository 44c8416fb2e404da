"""The VampPrior: its density is the mixture of the encoder's posteriors at the pseudo-inputs,
and so are its samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

import vaelab
from vaelab import models
from vaelab.estimators.objectives import sgvb_b
from vaelab.models.vamp import INIT_NOISE, VampPrior
from vaelab.runs import inputs


def _vae(k: int, seed: int = 0, **kw):
    torch.manual_seed(seed)
    c = vaelab.Config(hidden=(12,), latent_dim=3, prior="vamp", pseudo_inputs=k, **kw)
    return models.build(c, (10,))


def _components(model):
    """Each pseudo-input's posterior (means, stds), (K, Dz), straight from the encoder network."""
    with torch.no_grad():
        mean, logvar = model.encoder(model.latent_prior.pseudo).chunk(2, -1)
    return mean, torch.exp(0.5 * logvar)


def test_vamp_log_density_equals_the_explicit_mixture_of_pseudo_input_posteriors():
    model = _vae(7)
    mean, std = _components(model)
    z = 2 * torch.randn(5, 11, 3)  # (K, B, Dz)
    with torch.no_grad():
        got = model.log_prior(z)  # (5, 11)
    explicit = MixtureSameFamily(Categorical(probs=torch.full((7,), 1 / 7)), Independent(Normal(mean, std), 1))
    assert torch.allclose(got, explicit.log_prob(z), atol=1e-5)
    # and by hand, in float64: logsumexp_k sum_d log N(z_d; mu_kd, s_kd) - log K
    per = stats.norm.logpdf(z.numpy()[..., None, :], mean.numpy(), std.numpy()).sum(-1)  # (5, 11, K)
    assert np.allclose(got.numpy(), logsumexp(per, -1) - math.log(7), atol=1e-4)
    assert got.std() > 1.0  # varied points: a constant could not pass


@pytest.mark.parametrize("k", [1, 3])
def test_vamp_with_standard_normal_pseudo_posteriors_is_the_standard_normal(k):
    # encoder output 0 everywhere: q(z|u_k) = N(0, I) for every pseudo-input, so the mixture is N(0, I)
    model = _vae(k)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.zero_()
    z = 3 * torch.randn(400, 3)
    with torch.no_grad():
        got = model.log_prior(z)
    assert torch.allclose(got, Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-5)  # -log K must cancel


def test_vamp_samples_follow_the_pseudo_input_mixture():
    model = _vae(4, seed=1)
    with torch.no_grad():
        model.latent_prior.pseudo.normal_(0.0, 1.0)
        model.encoder[-1].weight[:3] *= 8  # components well apart: a multimodal mixture
    mean, std = _components(model)
    n = 40000
    with torch.no_grad():
        z = model.sample_latent(n, torch.Generator().manual_seed(0)).numpy()
    mix_mean = mean.mean(0).numpy()
    mix_var = (std ** 2 + mean ** 2).mean(0).numpy() - mix_mean ** 2
    se = np.sqrt(mix_var / n)
    assert np.all(np.abs(z.mean(0) - mix_mean) < 4 * se)  # 4 standard errors
    assert np.all(np.abs(z.var(0) / mix_var - 1) < 0.05)  # relative s.e. of a variance at n=40000: < 1.5%
    cdf = lambda v: np.mean([stats.norm.cdf(v, m, s) for m, s in zip(mean[:, 0], std[:, 0])], 0)  # noqa: E731
    assert stats.kstest(z[:, 0], cdf).pvalue > 0.01
    assert np.ptp(mean[:, 0].numpy()) > 2 * float(std[:, 0].max())  # the components are apart
    assert stats.kstest(z[:, 0], stats.norm(mix_mean[0], math.sqrt(mix_var[0])).cdf).pvalue < 1e-6  # not one normal


def test_vamp_pseudo_inputs_are_trained_and_start_at_training_examples():
    c = vaelab.Config(prior="vamp", pseudo_inputs=20, hidden=(16,), latent_dim=4)
    data = inputs.load_data(c)
    torch.manual_seed(0)
    model = models.build(c, data.shape, data)
    u = model.latent_prior.pseudo.detach()
    x = data.train.reshape(len(data.train), -1).float() * data.scale  # (N, D) in [0, 1]
    nearest = torch.cdist(u, x).min(1).values
    assert float(nearest.max()) < 6 * INIT_NOISE * math.sqrt(x.shape[1])  # each is a training example plus noise
    assert float(torch.cdist(u, u).topk(2, largest=False).values[:, 1].min()) > 1.0  # and they differ
    b = sgvb_b(model, x[:32].round(), k=2)
    b.loss.backward()
    assert model.latent_prior.pseudo.grad.abs().sum() > 0  # the bound reaches the pseudo-inputs


def test_hvae_vamp_is_the_prior_of_the_top_layer():
    torch.manual_seed(0)
    model = models.build(vaelab.Config(model="hvae", latent_dim=(4, 2), hidden=(8,), prior="vamp",
                                       pseudo_inputs=5), (10,))
    assert isinstance(model.latent_prior, VampPrior)
    with torch.no_grad():
        q = model.encode(model.latent_prior.pseudo)  # q(z2 | u_k)
        z = torch.randn(3, 7, 6)  # packed (z1, z2)
        top = MixtureSameFamily(Categorical(logits=torch.zeros(5)), q).log_prob(z[..., 4:])
        expect = top + model.conditional(0, z[..., 4:]).log_prob(z[..., :4])
        assert torch.allclose(model.log_prior(z), expect, atol=1e-5)


def test_evaluation_encodes_the_pseudo_inputs_once_and_gets_the_same_bounds(monkeypatch):
    from contextlib import nullcontext

    from vaelab.estimators import evaluation as evaluate
    model = _vae(6)
    x = torch.rand(9, 10).round()
    calls = []
    model.encoder.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    monkeypatch.setattr(evaluate, "CHUNK_ELEMENTS", 12 * 9 * 4)  # 4 samples per chunk: 25 chunks for k=100
    got = evaluate.point_bounds(model, x, 100, batch=9, seed=3)
    assert calls.count(6) == 1 and calls.count(9) == 1  # the pseudo-inputs once, the points once
    calls.clear()
    monkeypatch.setattr(evaluate, "held", lambda m: nullcontext())
    plain = evaluate.point_bounds(model, x, 100, batch=9, seed=3)
    assert calls.count(6) == 26  # without holding: once per chunk (25) and once for the closed-form KL try
    assert np.array_equal(got.iwae, plain.iwae) and np.array_equal(got.elbo, plain.elbo)
    # the held mixture is dropped on leaving: new pseudo-inputs give a new prior
    z = torch.randn(4, 3)
    with torch.no_grad():
        before = model.log_prior(z)
        model.latent_prior.pseudo.add_(1.0)
        assert not torch.allclose(model.log_prior(z), before)
