"""PixelVAE and the PixelCNN run end to end: the decoder is normalised and sampled right, the generic estimators
bracket an exact log p(x) (quadrature over a 1-D z), training runs with each estimator, and bad settings exit 2."""

import itertools
import json
import math

import pytest
import torch
from bounds_by_hand import bounds
from clitools import expect_error
from scipy.stats import chisquare
from torch.distributions import kl_divergence

import vaelab
from vaelab import api, models
from vaelab.config import schema as cfg
from vaelab.estimators import objectives
from vaelab.reports import compare
from vaelab.runs import inputs, loading
from vaelab.runs.folder import RunFolder

P_MIN = 1e-3
TINY = dict(pixel_channels=4, pixel_layers=2, pixel_kernel=3, hidden=(16,))


def _all_binary() -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # (16, 4), raster order


def tiny_pixel_vae(seed: int = 0, latent_dim: int = 1, context: int = 0):
    """A 2x2 PixelVAE whose p(x|z) depends strongly on z (large conditioning weights), so q is far from p(z|x)."""
    torch.manual_seed(seed)
    model = models.build(cfg.Config(model="pixel-vae", latent_dim=latent_dim, pixel_channels=6, pixel_layers=2,
                                    pixel_kernel=3, pixel_context=context, hidden=(16,)), (1, 2, 2))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    return model.eval()


@pytest.mark.parametrize("context", [0, 5])
def test_decoder_is_normalised_at_fixed_z_and_depends_on_z(context):
    model = tiny_pixel_vae(context=context)
    z = torch.tensor([[-2.0], [0.0], [1.5]])  # (3, 1)
    with torch.no_grad():
        p = model.decode(z).log_prob(_all_binary()[:, None]).double().exp()  # (16, 3)
    assert torch.allclose(p.sum(0), torch.ones(3, dtype=torch.float64), atol=1e-5)
    assert float((p[:, 0] - p[:, 2]).abs().max()) > 0.05  # z matters: the conditioning map is wired in


def test_decoder_samples_match_its_probabilities_at_fixed_z():
    model = tiny_pixel_vae(1)
    z = torch.tensor([0.7])
    with torch.no_grad():
        probs = model.decode(z).log_prob(_all_binary()).double().exp()  # (16,)
        draws = model.decode(z).sample((20_000,), generator=torch.Generator().manual_seed(0))  # (20000, 4)
    counts = torch.bincount((draws * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(-1).long(), minlength=16).double()
    assert chisquare(counts.numpy(), (probs / probs.sum() * 20_000).numpy()).pvalue > P_MIN


def exact_log_px(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log ∫ p(z) p(x|z) dz for a 1-D z, as a Riemann sum on a fine grid over [-8, 8], (B,)."""
    grid = torch.linspace(-8.0, 8.0, 1601)
    with torch.no_grad():
        lj = model.log_joint(x, grid[:, None, None].expand(-1, x.shape[0], 1)).double()  # (G, B)
    return torch.logsumexp(lj, 0) + math.log(float(grid[1] - grid[0]))


def test_elbo_below_iwae_below_exact_log_px_with_independent_draws():
    model = tiny_pixel_vae(2)
    x = _all_binary()
    exact = float(exact_log_px(model, x).mean())
    with torch.no_grad():
        torch.manual_seed(1)  # the ELBO's draws
        _, log_px_z, ratio = objectives.log_weights(model, x, 500)
        log_w = (log_px_z + ratio).double()  # (K, 16)
        elbo, elbo_se = float(log_w.mean()), float(log_w.std(0).norm()) / (16 * math.sqrt(500))
        torch.manual_seed(2)  # other draws: 25 independent IWAE-20 estimates per point
        reps = torch.stack([objectives.iwae(model, x, k=20).value.double() for _ in range(25)])  # (25, 16)
        iwae, iwae_se = float(reps.mean()), float(reps.std(0).norm()) / (16 * 5)
    assert elbo + 4 * (elbo_se + iwae_se) < iwae  # ELBO <= IWAE-20, by more than the noise
    assert iwae < exact + 4 * iwae_se  # IWAE-20 <= log p(x)
    assert exact - elbo > 0.5  # q is not the true posterior here, so there is a gap to see


@pytest.mark.parametrize("estimator", ["sgvb-b", "sgvb-a", "iwae"])
def test_pixel_vae_trains_with_each_estimator(tmp_path, estimator):
    run = vaelab.train(data="digits", model="pixel-vae", estimator=estimator, k=2, epochs=2, latent_dim=2,
                       batch_size=64, lr=3e-3, out=tmp_path / "r", log=lambda s: None, **TINY)
    rows = RunFolder(run).read_metrics()
    key = "val_iwae" if estimator == "iwae" else "val_elbo"
    assert rows[1][key] > rows[0][key]  # the bound went up
    result = api.evaluate(run, k=5, write=False, precision="fp32")
    # the reported bounds against the same bounds from independent draws (bounds_by_hand: no vaelab estimator)
    c, model = loading.load_model(run)
    x = inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))
    hand = bounds(model, x, 5)
    assert abs(result["elbo"] - float(hand.elbo.mean())) < hand.elbo_tol
    assert abs(result["iwae"] - float(hand.iwae.mean())) < hand.iwae_tol
    with torch.no_grad():
        q = model.encode(x)
        kl = kl_divergence(q, model.prior()).double().mean()  # closed form: Gaussian q, N(0, I) prior
        spread = q.mean.double().var(0, unbiased=False)
    assert result["kl"] == pytest.approx(float(kl), rel=1e-5)
    assert result["active_units"] == int((spread > 0.01).sum())


@pytest.mark.precision(kind="auto")  # auto trains; the independent answer is computed in fp32, as evaluation is
def test_pixelcnn_run_reports_its_exact_nll(tmp_path):
    run = vaelab.train(data="digits", model="pixelcnn", epochs=1, batch_size=64, out=tmp_path / "p",
                       log=lambda s: None, **TINY)
    result = api.evaluate(run)
    c, model = loading.load_model(run)
    x = inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))  # the seeded binarization
    assert set(x.unique().tolist()) == {0.0, 1.0}
    with torch.no_grad():
        nll = -float(model.log_prob(x).double().mean())
    assert "k" not in result and "exact" in result["estimators"]["nll"]
    assert result["nll"] == pytest.approx(nll, abs=1e-4) and result["logp"] == pytest.approx(-nll, abs=1e-4)
    assert result["bits_per_dim"] == pytest.approx(nll / (64 * math.log(2)), rel=1e-9)
    assert json.loads(RunFolder(run).eval_path.read_text())["nll"] == result["nll"]
    rows, _ = compare.compare([str(run)], out=tmp_path / "cmp", update_runs=False)
    assert rows[0]["nll_estimator"] == "exact" and "pixelcnn" in rows[0]["model"]
    samples = api.sample(model, 6, seed=0)
    assert samples.shape == (6, 1, 8, 8) and set(samples.unique().tolist()) <= {0.0, 1.0}
    report = (run / "report.html").read_text()  # the samples grid, captioned as what it is
    assert "drawn pixel by pixel" in report and "Decoder means for 64" not in report


@pytest.mark.parametrize("args", [
    ["--model", "pixelcnn", "--set", "pixel_kernel=0"],
    ["--model", "pixelcnn", "--set", "pixel_kernel=4"],
    ["--model", "pixel-vae", "--set", "pixel_kernel=2"],
    ["--model", "pixelcnn", "--set", "pixel_context=-1"],
    ["--model", "pixelcnn", "--set", "binarize=false"],
    ["--model", "pixel-vae", "--set", "binarize=false"],
    ["--model", "pixelcnn", "--likelihood", "gaussian"],
    ["--model", "vae", "--likelihood", "categorical"],
    ["--model", "pixelcnn", "--data", "CORPUS"],
    ["--model", "pixel-vae", "--data", "CORPUS"],
])
def test_bad_settings_exit_2_and_write_nothing(tmp_path, capsys, args):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for i in range(6):
        (corpus / f"{i}.txt").write_text("the cat sat on the mat with a hat " * (i + 1))
    args = [f"corpus:{corpus}" if a == "CORPUS" else a for a in args]
    data = [] if "--data" in args else ["--data", "digits"]
    out = tmp_path / "run"
    expect_error(["train", *data, "--epochs", "1", "--out", str(out), *args], capsys)
    assert not out.exists()


def test_free_bits_change_the_loss_not_the_reported_elbo():
    model = tiny_pixel_vae(3, latent_dim=2)
    x = _all_binary()
    torch.manual_seed(4)
    plain = objectives.sgvb_b(model, x, k=1)
    model.free_bits = 2.0
    torch.manual_seed(4)
    freed = objectives.sgvb_b(model, x, k=1)
    assert torch.equal(plain.value, freed.value)
    per_dim = torch.distributions.kl_divergence(model.encode(x).base_dist, model.prior().base_dist).mean(0)  # (2,)
    expected = -plain.terms["recon"].mean() + per_dim.clamp(min=2.0).sum()
    assert float(freed.loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
    assert float(per_dim.min()) < 2.0  # the floor is active, so the loss really differs
    assert float(freed.loss.detach()) > float(plain.loss.detach()) + 1e-3


def test_free_bits_are_refused_where_they_do_not_apply():
    with pytest.raises(vaelab.errors.ConfigError):
        cfg.Config(model="vae", free_bits=0.5)
    with pytest.raises(vaelab.errors.ConfigError):
        cfg.Config(model="pixel-vae", estimator="iwae", free_bits=0.5)
    assert cfg.Config(model="pixel-vae", free_bits=0.5).free_bits == 0.5
