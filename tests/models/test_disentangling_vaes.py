"""β-VAE's β, β-TCVAE's KL decomposition and FactorVAE's discriminator: numbers against independent answers."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import norm

import vaelab
from vaelab import models
from vaelab.config import schema as cfg
from vaelab.errors import ConfigError
from vaelab.estimators import objectives

SMALL = dict(data="digits", hidden=(32,), latent_dim=3, batch_size=64, lr=1e-3, device="cpu", eval_k=10)
QUIET = dict(finish=False, log=lambda s: None)


def _model(name, beta=1.0, **kw):
    torch.manual_seed(0)
    return models.build(cfg.Config(model=name, hidden=(16,), latent_dim=3, beta=beta, **kw), (1, 8, 8))


def test_beta_weighs_the_kl_in_the_loss_only():
    x = torch.rand(5, 64).round()
    for beta in (1.0, 4.0):
        m = _model("vae", beta)
        torch.manual_seed(1)
        b = objectives.sgvb_b(m, x)
        assert torch.allclose(b.value, b.terms["recon"] - b.terms["kl"])  # the bound: no β in it
        assert torch.allclose(b.loss, -(b.terms["recon"] - beta * b.terms["kl"]).mean())
        torch.manual_seed(1)
        warm = objectives.sgvb_b(m, x, beta=0.5)  # warm-up and β multiply
        assert torch.allclose(warm.loss, -(warm.terms["recon"] - 0.5 * beta * warm.terms["kl"]).mean())
        assert torch.equal(warm.value, b.value)


@pytest.mark.precision(kind="fp32")
def test_kl_decomposition_against_the_minibatch_weighted_estimator_written_out():
    """Chen et al. 2018 eq. S8 with loops and scipy's normal density, on a batch of 3 in 2 dimensions."""
    loc = torch.tensor([[0.0, 1.0], [0.5, -1.0], [2.0, 0.0]])
    scale = torch.tensor([[1.0, 0.5], [0.3, 2.0], [1.5, 1.0]])
    q = torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)
    z = torch.tensor([[[0.1, 0.7], [0.4, -0.5], [1.2, 0.3]]])  # (K=1, B=3, 2)
    log_qz_x, log_pz = q.log_prob(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    n = 10
    mi, tc, dim_kl = (t[0].double().numpy() for t in objectives.kl_decomposition(q, z, log_qz_x, log_pz, n))
    L, S, Z = loc.double().numpy(), scale.double().numpy(), z[0].double().numpy()
    for i in range(3):
        own = norm.logpdf(Z[i], L[i], S[i]).sum()
        qz = math.log(sum(math.exp(norm.logpdf(Z[i], L[j], S[j]).sum()) for j in range(3)) / (n * 3))
        prod = sum(math.log(sum(norm.pdf(Z[i, d], L[j, d], S[j, d]) for j in range(3)) / (n * 3)) for d in range(2))
        prior = norm.logpdf(Z[i]).sum()
        assert mi[i] == pytest.approx(own - qz, abs=1e-5)
        assert tc[i] == pytest.approx(qz - prod, abs=1e-5)
        assert dim_kl[i] == pytest.approx(prod - prior, abs=1e-5)
        assert mi[i] + tc[i] + dim_kl[i] == pytest.approx(own - prior, abs=1e-5)  # the three parts are the KL


def test_btcvae_reports_the_elbo_and_weighs_only_the_total_correlation():
    x = torch.rand(6, 64).round()
    m, plain = _model("btcvae", 6.0), _model("vae")
    m.dataset_size = 100
    torch.manual_seed(2)
    b = objectives.btcvae(m, x)
    torch.manual_seed(2)
    ref = objectives.sgvb_b(plain, x)  # same weights (same seed), same draw: the same ELBO
    assert torch.allclose(b.value, ref.value)
    t = b.terms
    assert torch.allclose(b.loss, -(t["recon"] - (t["mi"] + 6.0 * t["tc"] + t["dim_kl"])).mean())


def test_permute_dims_shuffles_each_dimension_within_the_batch():
    z = torch.arange(40.0).reshape(1, 10, 4)
    torch.manual_seed(0)
    p = objectives.permute_dims(z)
    for d in range(4):
        assert sorted(p[0, :, d].tolist()) == z[0, :, d].tolist()
    assert not torch.equal(p, z)
    assert not all(torch.equal(p[0, :, 0] - z[0, 0, 0], p[0, :, d] - z[0, 0, d]) for d in range(1, 4))  # independent


def test_factorvae_gradients_reach_each_part_only_from_its_own_loss():
    x = torch.rand(8, 64).round()
    m = _model("factorvae", 10.0)
    disc = list(m.discriminator.parameters())
    vae = [p for p in m.parameters() if all(p is not d for d in disc)]
    torch.manual_seed(3)
    objectives.factorvae(m, x).loss.backward()
    got_d, got_v = [p.grad.clone() for p in disc], [p.grad.clone() for p in vae]
    m.zero_grad()
    # the same draws again, then each loss alone: the discriminator's cross-entropy, the VAE's ELBO - γ TC
    torch.manual_seed(3)
    q = m.encode(x)
    z = q.rsample((1,))
    real, fake = z[:, :4].detach(), objectives.permute_dims(z[:, 4:].detach())  # rows 0-3 joint, 4-7 permuted
    logits = m.discriminator(torch.cat([real, fake], -2)).reshape(-1, 2)
    label = torch.cat([torch.zeros(4), torch.ones(4)]).long()
    torch.nn.functional.cross_entropy(logits, label).backward(inputs=disc)
    for a, b in zip(got_d, disc):
        assert torch.allclose(a, b.grad, atol=1e-6)
    m.zero_grad()
    recon = m.log_likelihood(x, z).mean(0)
    lg = m.discriminator(z)
    vae_loss = -(recon - m.analytic_kl(q) - 10.0 * (lg[..., 0] - lg[..., 1]).mean(0)).mean()
    vae_loss.backward(inputs=vae)
    for a, b in zip(got_v, vae):
        assert torch.allclose(a, b.grad, atol=1e-5)


def test_factorvae_discriminator_permutes_rows_other_than_those_it_sees_joint():
    """Kim & Mnih 2018, Algorithm 2: D's "joint" inputs are q(z) samples of some rows, its "permuted" inputs
    dimension-wise shuffles of OTHER rows' samples (a second batch), never of the joint rows'."""
    m = _model("factorvae", 10.0)
    seen = []  # every z that reaches the discriminator, (K, rows, Dz)
    m.discriminator.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    for b in (8, 7):  # an even batch and an odd one
        seen.clear()
        torch.manual_seed(4)
        bound = objectives.factorvae(m, torch.rand(b, 64).round())
        (z, both), h = seen, b // 2  # the VAE's TC read (all rows' samples), then D's own [joint; permuted]
        assert z.shape == (1, b, 3) and both.shape == (1, 2 * h, 3)
        joint, permuted = both[0, :h], both[0, h:]
        rows = [next(i for i in range(b) if torch.equal(z[0, i], r)) for r in joint]  # joint: whole rows of z
        others = [i for i in range(b) if i not in rows]
        for d in range(3):
            got = permuted[:, d].tolist()
            assert not set(got) & set(z[0, rows, d].tolist())  # nothing from the rows it saw as joint
            assert set(got) <= set(z[0, others, d].tolist()) and len(set(got)) == h  # h distinct other rows
        assert torch.isfinite(bound.terms["discriminator"]).all()
    seen.clear()
    one = objectives.factorvae(m, torch.rand(1, 64).round())  # a batch of one: no pair, D learns nothing
    assert len(seen) == 2 and seen[1].shape == (1, 0, 3) and one.terms["discriminator"].item() == 0.0


@pytest.mark.precision(kind="auto")  # runs compared alike
def test_factorvae_resume_is_bit_exact_with_its_discriminator_optimiser(tmp_path):
    kw = dict(SMALL, model="factorvae", beta=5.0)
    whole = vaelab.train(out=tmp_path / "whole", epochs=4, **kw, **QUIET)
    part = vaelab.train(out=tmp_path / "part", epochs=2, **kw, **QUIET)
    vaelab.train(out=part, resume=True, epochs=4, **QUIET)
    a, b = load_file(str(whole / "checkpoint.safetensors")), load_file(str(part / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("model.discriminator.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    from safetensors import safe_open
    with safe_open(str(whole / "checkpoint.safetensors"), "pt") as f:
        groups = json.loads(f.metadata()["param_groups"])
    assert [g["betas"] for g in groups] == [[0.9, 0.999], [0.5, 0.9]]  # the discriminator's own Adam
    n_disc = sum(k.startswith("model.discriminator.") for k in a)
    assert len(groups[1]["params"]) == n_disc and all(f"optim.{i}.exp_avg" in a for i in groups[1]["params"])
    rows = [json.loads(s) for s in (part / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(s) for s in (whole / "metrics.jsonl").read_text().splitlines()]
    assert rows == [r | {"train_seconds": s["train_seconds"]} for r, s in zip(ref, rows)]
    assert all("train_objective" in r for r in rows)  # the loss is never the bound: logged apart


def test_beta_runs_log_the_bound_as_train_loss_and_the_objective_apart(tmp_path):
    one = vaelab.train(out=tmp_path / "one", epochs=2, **SMALL, **QUIET)
    four = vaelab.train(out=tmp_path / "four", epochs=2, beta=4.0, **SMALL, **QUIET)
    a = [json.loads(s) for s in (one / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(s) for s in (four / "metrics.jsonl").read_text().splitlines()]
    assert "train_objective" not in a[0] and "train_objective" in b[0]
    # epoch 1 starts from the same weights: the bound differs only by what β changed in the updates, while the
    # objective carries 3 extra KLs (KL of a 3-dimensional code at init is far above the difference of the bounds)
    assert b[0]["train_objective"] - b[0]["train_loss"] > 0
    assert np.isfinite([r["val_elbo"] for r in a + b]).all()


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="beta must be >= 0"):
        cfg.Config(beta=-1.0)
    with pytest.raises(ConfigError, match="beta weighs a KL"):
        models.build(cfg.Config(model="ae", beta=2.0), (1, 8, 8))
    with pytest.raises(ConfigError, match="objective of model btcvae"):
        models.estimator_for(cfg.Config(model="vae", estimator="btcvae"))
