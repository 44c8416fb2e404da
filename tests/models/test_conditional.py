"""The conditional VAE (Sohn et al. 2015): the label enters encoder and decoder, the data carries it after the image,
its bounds are on log p(x | y) and say so, samples come per class; a label of the wrong width is refused."""

import math

import pytest
import torch
from clitools import expect_error
from torch.distributions import Bernoulli, Normal

from vaelab import api, models
from vaelab.cli.main import run as cli
from vaelab.errors import VaelabError
from vaelab.runs import inputs, loading

FAST = ["--hidden", "32", "--latent-dim", "3", "--batch-size", "128", "--device", "cpu", "--eval-k", "20"]


def _model(seed=0, k=10):
    torch.manual_seed(seed)
    return models.build(api.make_config(conditional=True, classes=k, hidden=(16,), latent_dim=3), (1, 8, 8)).eval()


@pytest.mark.precision(kind="fp32")
def test_log_weights_are_the_cvae_densities_by_hand():
    model = _model()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 64, generator=g).bernoulli()
    y = torch.tensor([0, 3, 3, 9, 1])
    xy = torch.cat([x, torch.nn.functional.one_hot(y, 10).float()], 1)  # (5, 74)
    z = torch.randn(4, 5, 3, generator=g)  # (K, B, Dz)
    with torch.no_grad():
        # by hand from the two MLPs: q(z | x, y) = N(mu, exp(h / 2)), p(x | z, y) = Bernoulli(logits), p(z) = N(0, I)
        mu, h = model.encoder(xy).chunk(2, -1)
        log_q = Normal(mu, torch.exp(0.5 * h)).log_prob(z).sum(-1)
        logits = model.decoder(torch.cat([z, xy[:, 64:].expand(4, 5, 10)], -1))
        log_px = Bernoulli(logits=logits).log_prob(x).sum(-1)
        log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
        assert torch.allclose(model.encode(xy).log_prob(z), log_q, atol=1e-5)
        assert torch.allclose(model.log_likelihood(xy, z), log_px, atol=1e-4)
        assert torch.allclose(model.log_prior(z), log_pz, atol=1e-5)
        # the label enters both networks: another y moves q and p(x | z, y)
        other = torch.cat([x, torch.nn.functional.one_hot((y + 1) % 10, 10).float()], 1)
        assert (model.encode(other).mean - model.encode(xy).mean).abs().max() > 1e-3
        assert (model.log_likelihood(other, z) - log_px).abs().max() > 1e-3


def test_the_data_carries_the_one_hot_label_after_the_image():
    c = api.make_config(conditional=True)
    data = inputs.load_data(c)
    plain = inputs.load_data(api.make_config())
    assert data.shape == (1, 8, 8) and data.dim == 64 and data.test.shape[1] == 74
    assert inputs.conditioned(c, data).classes == 10
    assert torch.equal(data.test[:, :64], plain.test)
    x = inputs.eval_inputs(c.replace(classes=10), data, "test", torch.device("cpu"))
    assert torch.equal(x[:, :64], inputs.eval_inputs(api.make_config(), plain, "test", torch.device("cpu")))
    assert torch.equal(x[:, 64:], torch.nn.functional.one_hot(plain.y_test, 10).float())  # binarized: still one-hot


def test_a_conditional_run_labels_its_bounds_and_samples_per_class(tmp_path):
    out = tmp_path / "cvae"
    assert cli(["-q", "train", "--conditional", "--epochs", "2", "--out", str(out), "--no-explorer", *FAST]) == 0
    c, model = loading.load_model(out)
    assert c.conditional and c.classes == 10 and model.classes == 10
    ev = api.evaluate(out, k=20, write=False)
    assert ev["conditional"]["classes"] == 10 and "log p(x | y)" in ev["estimators"]["iwae"]
    assert (out / "plots" / "samples.png").is_file() and (out / "plots" / "manifold.png").is_file()  # of class 0
    assert (out / "plots" / "interp.png").is_file()  # between two images of class 0, decoded with its label
    g = torch.Generator().manual_seed(0)
    z = model.sample_latent(2, g)
    with torch.no_grad():  # one z decoded with two labels: two different images
        a, b = (model.decode(z, torch.nn.functional.one_hot(torch.tensor([k, k]), 10).float()).mean for k in (0, 7))
    assert (a - b).abs().max() > 1e-3
    assert model.sample(3, y=torch.tensor([1, 2, 3])).shape == (3, 64)
    with pytest.raises(VaelabError, match="width 10"):
        model.sample(3, y=torch.zeros(3, 7))
    with pytest.raises(VaelabError, match="decodes z with a label"):
        model.decode(z)
    # the NLL is per example in nats, D = 64 image values (the label's 10 columns are not scored)
    assert ev["bits_per_dim"] == pytest.approx(ev["nll"] / (64 * math.log(2)))


def test_labels_a_one_hot_of_that_width_cannot_hold_are_one_error_line(tmp_path, capsys):
    out = tmp_path / "r"
    err = expect_error(["train", "--conditional", "--set", "classes=5", "--out", str(out), *FAST], capsys)
    assert "labels up to 9" in err and "width 5" in err and not out.exists()
    err = expect_error(["train", "--conditional", "--model", "hvae", "--latent-dim", "4,2", "--out", str(out)], capsys)
    assert "conditional" in err and not out.exists()


@pytest.mark.precision(kind="fp32")
def test_the_conditional_conv_vae_reads_the_label_in_both_networks():
    torch.manual_seed(0)
    model = models.build(api.make_config(model="conv-vae", conditional=True, classes=2, latent_dim=3), (3, 8, 8))
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 192, generator=g).bernoulli()
    y0, y1 = (torch.nn.functional.one_hot(torch.full((4,), k), 2).float() for k in (0, 1))
    z = torch.randn(4, 3, generator=g)
    with torch.no_grad():
        # by hand: the conv body on the image, then the dense head on [features, y]
        h = model.encoder.body(x.reshape(4, 3, 8, 8))
        mu = model.encoder.head(torch.cat([h, y1], -1)).chunk(2, -1)[0]
        assert torch.allclose(model.encode(torch.cat([x, y1], 1)).mean, mu, atol=1e-6)
        assert (model.encode(torch.cat([x, y0], 1)).mean - mu).abs().max() > 1e-4
        p0, p1 = (model.decode(z, y).mean for y in (y0, y1))
        assert p0.shape == (4, 192) and (p0 - p1).abs().max() > 1e-4


@pytest.mark.precision(kind="auto")  # two runs made alike under the default, compared bit for bit
def test_a_resumed_conditional_run_is_the_uninterrupted_one(tmp_path):
    from safetensors.torch import load_file

    flags = ["--conditional", "--no-report", "--hidden", "16", "--latent-dim", "2", "--device", "cpu"]
    assert cli(["-q", "train", "--epochs", "1", "--out", str(tmp_path / "a"), *flags]) == 0
    assert cli(["-q", "train", "--resume", str(tmp_path / "a"), "--epochs", "2", "--no-report"]) == 0
    assert cli(["-q", "train", "--epochs", "2", "--out", str(tmp_path / "b"), *flags]) == 0
    a, b = (load_file(tmp_path / r / "model.safetensors") for r in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_manifold_of_a_conditional_model_decodes_the_chosen_class(tmp_path, monkeypatch, capsys):
    import numpy as np
    from scipy.stats import norm

    from vaelab.reports import plots, views

    out = tmp_path / "cvae"
    flags = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "128", "--device", "cpu"]
    assert cli(["-q", "train", "--conditional", "--epochs", "1", "--no-report", "--out", str(out), *flags]) == 0
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    view = views.RunView(out)
    q = norm.ppf((np.arange(5) + 0.5) / 5)  # N(0, 1) quantiles (i + 0.5) / 5, the top row the highest z2
    z = torch.tensor([(q[c], q[4 - r]) for r in range(5) for c in range(5)], dtype=torch.float32)
    tiles = {}
    for y in (3, 8):
        view.manifold(n=5, y=y)
        (image,) = figures[-1].axes[0].get_images()
        picture = np.asarray(image.get_array())  # 5 x 5 tiles of 8 x 8 pixels with a 1-pixel gutter
        tiles[y] = picture[1:, 1:].reshape(5, 9, 5, 9)[:, :8, :, :8].transpose(0, 2, 1, 3).reshape(25, 8, 8)
        with torch.no_grad():  # by hand: p(x | z, y) at each grid point with the one-hot label of y
            means = view.model.decode(z, torch.eye(10)[[y] * 25]).mean.reshape(25, 8, 8).numpy()
        assert np.allclose(tiles[y], means, atol=1e-6)
        assert f"given y = {y}" in figures[-1].axes[0].get_title()
    assert np.abs(tiles[3] - tiles[8]).max() > 0.01  # one epoch: the classes already differ
    with pytest.raises(VaelabError, match="0 to 9, not 10"):
        view.manifold(n=5, y=10)
    assert cli(["plot", str(out), "--kind", "manifold", "--class", "4"]) == 0
    err = expect_error(["plot", str(out), "--kind", "samples", "--class", "4"], capsys)
    assert "--class" in err and "samples" in err
    plain = tmp_path / "vae"
    assert cli(["-q", "train", "--epochs", "1", "--no-report", "--out", str(plain), *flags]) == 0
    err = expect_error(["plot", str(plain), "--kind", "manifold", "--class", "4"], capsys)
    assert "only for a conditional model" in err
