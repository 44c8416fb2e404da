"""The amortization gap against a closed form, and the command on the early and late weights of one run."""

import json
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

import vaelab
from vaelab.cli.main import run as cli
from vaelab.estimators import amortization_gap as amortize
from vaelab.models import VAE
from vaelab.models.networks import MLP

D = 5


def _linear_gaussian_1d():
    """p(z)=N(0,1), p(x|z)=N(wz, I): the posterior N(s w.x, s), s = 1/(1+|w|^2), is in the Gaussian family."""
    w = torch.tensor([1.0, -0.5, 2.0, 0.3, 1.2])
    s = 1.0 / (1.0 + float(w @ w))
    model = VAE(MLP(D, (), 2), MLP(1, (), D), data_dim=D, latent_dim=1, likelihood="gaussian")
    with torch.no_grad():
        model.decoder[0].weight.copy_(w[:, None])
        model.decoder[0].bias.zero_()
        # a deliberately poor encoder: mean shrunk by 0.6, variance doubled
        model.encoder[0].weight.zero_()
        model.encoder[0].weight[0] = 0.6 * s * w
        model.encoder[0].bias.zero_()
        model.encoder[0].bias[1] = math.log(2.0 * s)
    marginal = MultivariateNormal(torch.zeros(D), torch.outer(w, w) + torch.eye(D))
    x = marginal.sample(torch.Size([40]))
    return model, x, marginal.log_prob(x), w, s


def test_gap_is_the_kl_from_the_encoder_to_the_exact_posterior():
    torch.manual_seed(0)
    model, x, log_px, w, s = _linear_gaussian_1d()
    r = amortize.measure(model, x, steps=400, lr=0.05, samples=16, k=4000)
    # the optimised q reaches the exact posterior, so its ELBO is log p(x) ...
    assert r["optimized_elbo"] == pytest.approx(float(log_px.mean()), abs=0.02)
    assert r["iwae"] == pytest.approx(float(log_px.mean()), abs=0.01)
    # ... and the gap is KL(q_encoder || p(z|x)) between two 1-D Gaussians, in closed form
    mu_p, var_p = s * (x @ w), s
    mu_q, var_q = 0.6 * s * (x @ w), 2.0 * s
    kl = 0.5 * (math.log(var_p / var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1)
    assert r["gap"] == pytest.approx(float(kl.mean()), abs=0.02)
    assert r["approximation_gap"] == pytest.approx(0.0, abs=0.02)
    assert r["seconds_per_point_optimized"] > r["seconds_per_point_amortized"]


def test_an_exact_encoder_has_no_gap():
    torch.manual_seed(1)
    model, x, log_px, w, s = _linear_gaussian_1d()
    with torch.no_grad():
        model.encoder[0].weight[0] = s * w
        model.encoder[0].bias[1] = math.log(s)
    r = amortize.measure(model, x, steps=100, lr=0.01, samples=8, k=500)
    assert r["amortized_elbo"] == pytest.approx(float(log_px.mean()), abs=1e-4)
    assert abs(r["gap"]) < 0.01  # noisy Adam steps leave q a few thousandths of a nat off the optimum


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    out = tmp_path_factory.mktemp("gap") / "run"
    return vaelab.train(finish=False,
                        out=out, data="digits", hidden=(32,), latent_dim=4, epochs=6, save_every=2, batch_size=64,
                        device="cpu", log=lambda s: None)


def test_gap_for_early_and_late_weights_of_one_run(kept, capsys):
    assert sorted(p.name for p in (kept / "epochs").iterdir()) == [
        "epoch-002.safetensors", "epoch-004.safetensors", "epoch-006.safetensors"]
    args = ["-q", "amortization-gap", str(kept), "--points", "30", "--steps", "60", "--k", "200"]
    assert cli([*args, "--epoch", "2"]) == 0
    assert cli(args) == 0
    data = json.loads((kept / "amortization_gap.json").read_text())
    early, late = data["checkpoints"]
    assert (early["epoch"], late["epoch"]) == (2, 6) and late["weights"] == "model.safetensors"
    assert data["gap"] == late["gap"] and early["gap"] > 0 and late["gap"] > 0
    assert late["amortized_elbo"] > early["amortized_elbo"]  # training improved the encoder and decoder
    vaelab.report(kept)
    html = (kept / "report.html").read_text()
    # the gap section names the early weights once (the Files section links every file of the run besides)
    section = html.split("Amortization gap", 1)[1].split("<h2", 1)[0]
    assert section.count("epoch-002") == 1 and "model.safetensors" in section


def test_gap_command_refuses_bad_input(kept, capsys):
    before = (kept / "amortization_gap.json").read_bytes() if (kept / "amortization_gap.json").exists() else None
    code = cli(["-q", "amortization-gap", str(kept), "--epoch", "3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("vaelab: error:")
    with pytest.raises(SystemExit) as e:  # refused as the flag is parsed (test_numeric_flags.py)
        cli(["-q", "amortization-gap", str(kept), "--steps", "0"])
    assert e.value.code == 2 and "argument --steps: must be an integer >= 1" in capsys.readouterr().err
    after = (kept / "amortization_gap.json").read_bytes() if (kept / "amortization_gap.json").exists() else None
    assert before == after
