"""Denoising autoencoder (noise processes, clean-target loss) and IWAE training on its own bound."""

import json
import math

import pytest
import torch
from bounds_by_hand import bounds

import vaelab
from vaelab.cli.main import run as cli
from vaelab.distributions.corruption import Noise, fixed
from vaelab.estimators.evaluation import noisy_reconstruction
from vaelab.estimators.objectives import ae, dae, iwae, sgvb_a
from vaelab.models import AE, DAE
from vaelab.models.networks import MLP
from vaelab.runs import inputs, loading

SMALL = dict(data="digits", batch_size=64, lr=1e-3, device="cpu", eval_k=50, log=lambda s: None)


def test_masking_zeroes_a_fraction_p_and_keeps_the_rest():
    x = torch.rand(200, 500) + 0.5  # no zeros to begin with
    g = torch.Generator().manual_seed(0)
    xt = Noise("masking", 0.3)(x, g)
    zeroed = xt == 0
    assert abs(float(zeroed.float().mean()) - 0.3) < 0.005  # 100,000 Bernoulli(0.3) draws: sd 0.0015
    assert torch.equal(xt[~zeroed], x[~zeroed])  # masking never changes a kept value


def test_gaussian_noise_has_the_asked_mean_and_spread():
    x = torch.full((400, 500), 0.5)
    xt = Noise("gaussian", 0.2, mean=0.1)(x, torch.Generator().manual_seed(0))
    eps = xt - x
    assert abs(float(eps.mean()) - 0.1) < 0.002 and abs(float(eps.std()) - 0.2) < 0.002


def test_training_draws_come_from_the_global_rng():
    x = torch.zeros(300, 400)
    torch.manual_seed(0)
    a = Noise("gaussian", 0.2)(x)
    torch.manual_seed(0)
    assert torch.equal(a, Noise("gaussian", 0.2)(x))  # reproducible from the seeded, checkpointed RNG
    assert abs(float(a.std()) - 0.2) < 0.002 and abs(float(a.mean())) < 0.002
    torch.manual_seed(0)
    m = Noise("masking", 0.4)(x + 1)
    assert abs(float((m == 0).float().mean()) - 0.4) < 0.005


def test_fixed_noise_is_the_same_for_every_call():
    x = torch.rand(30, 40)
    n = Noise("masking", 0.5)
    assert torch.equal(fixed(n, x), fixed(n, x))


def _dae(level):
    torch.manual_seed(0)
    return DAE(MLP(8, (6, 5), 3), MLP(3, (5, 6), 8), noise=Noise("masking", level), data_dim=8, latent_dim=3,
               likelihood="bernoulli")


def test_dae_loss_scores_the_clean_input():
    model = _dae(0.5)
    x = torch.randint(0, 2, (16, 8)).float()
    torch.manual_seed(7)
    bound = dae(model, x)
    torch.manual_seed(7)
    x_noisy = model.corrupt(x)
    with torch.no_grad():
        logits = model.decoder(model.encoder(x_noisy))
    clean = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    noisy = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x_noisy, reduction="none").sum(1)
    assert torch.allclose(bound.value, clean, atol=1e-5)
    assert not torch.allclose(bound.value, noisy, atol=1e-3)  # the target is x, never x~


def test_dae_without_noise_is_the_plain_autoencoder():
    model = _dae(0.0)
    x = torch.randint(0, 2, (16, 8)).float()
    assert torch.allclose(dae(model, x).value, ae(model, x).value)


def test_dae_denoises_better_than_a_plain_autoencoder(tmp_path):
    # same stacked MLP, same data and epochs; scored on the same seeded masked test inputs
    arch = dict(hidden=(64, 32), latent_dim=16, epochs=60, **dict(SMALL, lr=3e-3))
    runs = {m: vaelab.train(finish=False, out=tmp_path / m, model=m, noise_level=0.3, **arch) for m in ("ae", "dae")}
    noise = Noise("masking", 0.3)
    res = {m: vaelab.evaluate(r, noise=noise) for m, r in runs.items()}
    assert res["dae"]["noise"] == res["ae"]["noise"] == "masking p=0.3"
    assert res["dae"]["noisy_recon_error"] < res["ae"]["noisy_recon_error"] - 1.0  # 17.7 vs 21.1 when measured
    assert res["dae"]["noisy_squared_error"] < res["ae"]["noisy_squared_error"]
    # a DAE is evaluated on its own noise by default; the plain AE only when asked
    assert "noise" in vaelab.evaluate(runs["dae"]) and "noise" not in vaelab.evaluate(runs["ae"])
    assert cli(["-q", "evaluate", str(runs["ae"]), "--noise", "masking", "--noise-level", "0.3"]) == 0
    ev = json.loads((runs["ae"] / "eval.json").read_text())
    assert ev["noisy_recon_error"] == pytest.approx(res["ae"]["noisy_recon_error"])


def test_noisy_reconstruction_matches_a_hand_computation():
    model = AE(MLP(8, (), 3), MLP(3, (), 8), data_dim=8, latent_dim=3, likelihood="gaussian")
    x = torch.rand(20, 8)
    n = Noise("gaussian", 0.1)
    with torch.no_grad():
        mean = model.decoder(model.encoder(fixed(n, x)))
    r = noisy_reconstruction(model, x, n)
    sq = (x - mean).pow(2).sum(1)
    assert r["noisy_squared_error"] == pytest.approx(float(sq.mean()), rel=1e-5)
    assert r["noisy_recon_error"] == pytest.approx(float((0.5 * sq + 4 * math.log(2 * math.pi)).mean()), rel=1e-5)


def test_iwae_model_trains_on_the_k_sample_bound_and_logs_it(tmp_path):
    run = vaelab.train(out=tmp_path / "iwae", model="iwae", k=5, hidden=(32,), latent_dim=4, epochs=4, finish=True,
                       **SMALL)
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    # it is selected on IWAE-5 and logs the ELBO beside it
    assert all({"val_iwae", "val_elbo"} <= r.keys() for r in rows)
    # the evaluated NLL-50 (fp32) against IWAE-50 from independent draws (bounds_by_hand: no vaelab estimator)
    e = vaelab.evaluate(run, k=50, precision="fp32", write=False)
    c, model = loading.load_model(run)
    hand = bounds(model, inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu")), 50)
    assert abs(e["nll"] + float(hand.iwae.mean())) < hand.iwae_tol


def test_iwae_loss_is_the_negative_bound_at_any_k():
    torch.manual_seed(0)
    model = vaelab.build_model(vaelab.Config(model="iwae", hidden=(8,), latent_dim=2), (6,))
    x = torch.randint(0, 2, (10, 6)).float()
    for k in (1, 5):
        b = iwae(model, x, k=k)
        assert float(b.loss.detach()) == pytest.approx(-float(b.value.mean()), rel=1e-6)
    torch.manual_seed(4)
    one = iwae(model, x, k=1).value
    torch.manual_seed(4)
    assert torch.allclose(one, sgvb_a(model, x, k=1).value)  # k=1 is the single-sample ELBO


def test_iwae_at_k1_trains(tmp_path):
    run = vaelab.train(finish=False,
                       out=tmp_path / "k1", model="iwae", k=1, hidden=(16,), latent_dim=2, epochs=2, **SMALL)
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    # the logged IWAE-1 (a one-sample ELBO) of the kept epoch is the kept weights' bound on the validation split,
    # within the Monte-Carlo tolerance of independent draws; it rose from the untrained weights' by more than 4 of those
    c = loading.load_config(run)
    x = inputs.eval_inputs(c, inputs.load_data(c), "val", torch.device("cpu"))
    kw = dict(model="iwae", k=1, hidden=(16,), latent_dim=2, **SMALL)
    initial = vaelab.load(vaelab.train(finish=False, out=tmp_path / "k1-init", epochs=0, **kw))
    hand, start = bounds(vaelab.load(run), x, 1), bounds(initial, x, 1)
    assert abs(max(r["val_iwae"] for r in rows) - float(hand.iwae.mean())) < hand.iwae_tol
    assert float(hand.iwae.mean() - start.iwae.mean()) > 4 * hand.iwae_tol
