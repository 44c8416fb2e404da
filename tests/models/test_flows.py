"""Flow posteriors: log-determinants against autograd's Jacobian, and IWAE-5000 against an exact log p(x)."""

from __future__ import annotations

import pytest
import torch
from linear_models import one_layer
from torch.autograd.functional import jacobian

import vaelab
from vaelab import models
from vaelab.estimators.evaluation import summarize
from vaelab.estimators.objectives import iwae, sgvb_a, sgvb_b
from vaelab.models.flows import Flow, Planar


def _random_flow(kind: str, steps: int, dz: int, context: int, seed: int) -> Flow:
    torch.manual_seed(seed)
    flow = Flow(kind, steps, dz, context).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0.0, 0.7)  # well away from the identity start
    return flow


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_flow_log_det_equals_autograd_jacobian(kind):
    dz, c = 5, 7
    for seed in range(4):
        flow = _random_flow(kind, 3, dz, c, seed)
        h = torch.randn(c, dtype=torch.float64)
        z0 = 1.5 * torch.randn(dz, dtype=torch.float64)
        f = lambda z: flow(z[None, None], h[None])[0][0, 0]  # noqa: E731  (Dz,) -> (Dz,)
        sign, logabs = torch.linalg.slogdet(jacobian(f, z0))
        with torch.no_grad():
            _, log_det = flow(z0[None, None], h[None])
        assert abs(float(log_det) - float(logabs)) < 1e-8, (seed, float(log_det), float(logabs))
        assert abs(float(logabs)) > 0.1  # not the identity: the check has something to find
        if kind == "iaf":
            j = jacobian(lambda z: flow.steps[0](z[None, None], h[None])[0][0, 0], z0)
            assert torch.allclose(j.triu(1), torch.zeros_like(j)) and j.tril(-1).abs().sum() > 0.01  # autoregressive


def test_planar_reparameterisation_keeps_every_step_invertible():
    # u = -3 w puts w.u far below -1, where the raw planar map folds; u^ must keep det J > 0 everywhere
    step = Planar(4, 1).double()
    w = torch.tensor([1.0, -0.5, 0.3, 0.8], dtype=torch.float64)
    with torch.no_grad():
        step.params.weight.zero_()
        step.params.bias.copy_(torch.cat([-3 * w, w, torch.tensor([0.2], dtype=torch.float64)]))
    h = torch.zeros(1, 1, dtype=torch.float64)
    z = 3 * torch.randn(2000, 1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for zi in z[:50]:
        sign, _ = torch.linalg.slogdet(jacobian(lambda v: step(v[None], h)[0][0], zi[0]))
        assert sign > 0
    raw_det = 1 + (1 - torch.tanh(z @ w + 0.2) ** 2) * float(w @ (-3 * w))  # without u^: det of the raw map
    assert (raw_det < 0).any()  # so the reparameterisation is what keeps it positive


def _flow_vae(kind: str):
    """The linear-Gaussian VAE of linear_models.one_layer with a one-step flow on a widened exact-posterior base."""
    torch.manual_seed(0)
    base, marginal = one_layer(6, 3, inflate=2.0, seed=2)  # widened: the ELBO has a gap to close
    model = models.build(vaelab.Config(hidden=(), latent_dim=3, likelihood="gaussian", flow=kind, flow_steps=1), (6,))
    with torch.no_grad():
        model.decoder.load_state_dict(base.decoder.state_dict())
        enc = model.encoder[0]
        enc.weight.zero_()
        enc.bias.zero_()
        shrink = 0.8  # the IAF step below multiplies z by sigma = 0.8: start 1/0.8 wider and further out
        enc.weight[:6] = torch.cat([base.encoder[0].weight[:3] / shrink, base.encoder[0].weight[3:]])
        enc.bias[:3] = base.encoder[0].bias[:3] / shrink
        enc.bias[3:6] = base.encoder[0].bias[3:] - 2 * torch.log(torch.tensor(shrink))
        enc.bias[6:] = torch.randn(6) * 0.5  # the context h
        if kind == "iaf":
            step = model.flow.steps[0]
            for p in step.parameters():
                p.normal_(0.0, 0.05)  # m: a small autoregressive shift
            step.out.weight[3:].zero_()
            step.out.bias[3:] = torch.logit(torch.tensor(shrink)) - 1.0  # s + GATE_BIAS = logit(0.8)
        else:
            enc.weight[:3] = base.encoder[0].weight[:3]
            enc.bias[:3] = base.encoder[0].bias[:3]
            enc.bias[3:6] = base.encoder[0].bias[3:]
            p = model.flow.steps[0].params
            p.weight.normal_(0.0, 0.3)
            p.bias.normal_(0.0, 0.5)
    return model, marginal


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_flow_posterior_iwae_5000_is_within_0_05_nat_of_exact(kind):
    model, marginal = _flow_vae(kind)
    x = marginal.sample((300,))
    exact = float(marginal.log_prob(x).mean())
    with torch.no_grad():
        q = model.encode(x)
        _, log_det = model.flow(q.rsample((200,)), q.context)
    assert abs(float(log_det.mean())) > 0.25  # leaving the log-determinant out would miss by this much
    r = summarize(model, x, 5000, seed=1)
    assert abs(-r["nll"] - exact) < 0.05
    assert r["elbo"] < exact - 0.2
    assert "Monte Carlo" in r["estimators"]["kl"]  # no closed-form KL with a flow


def test_flow_vae_runs_through_every_estimator_unchanged():
    model, marginal = _flow_vae("iaf")
    x = marginal.sample((300,))
    elbo = summarize(model, x, 2000, seed=3)["elbo"]
    torch.manual_seed(3)
    with torch.no_grad():
        a, b = (float(f(model, x, k=2000).value.mean()) for f in (sgvb_a, sgvb_b))
        one = iwae(model, x, k=1).value
    assert model.analytic_kl(model.encode(x)) is None
    assert abs(a - elbo) < 0.05 and abs(b - elbo) < 0.05  # sgvb-b fell back to Monte Carlo
    assert abs(float(one.mean()) - elbo) < 4 * float(one.std()) / 300 ** 0.5
