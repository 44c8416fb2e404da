"""The explorer's parts that need no browser: the decoder route and its weights, the PCA plane, the grid, the CLI."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from clitools import expect_error

import vaelab
from vaelab import models
from vaelab.cli.main import run as cli
from vaelab.config.schema import Config
from vaelab.data.labels import FASHION_MNIST, label_names
from vaelab.explorer import decoder as xd
from vaelab.explorer import page as explorer
from vaelab.runs import inputs, loading

SMALL = dict(data="digits", hidden=(32,), latent_dim=2, batch_size=64, lr=3e-3, device="cpu", epochs=2,
             log=lambda s: None, finish=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return vaelab.train(out=tmp_path_factory.mktemp("x") / "run", **SMALL)


def _model(**kw):
    torch.manual_seed(0)
    c = Config(**{"hidden": (16, 8), "latent_dim": 3, **kw})
    return models.build(c, (1, 8, 8) if c.model != "nvdm" else (50,)).eval()


@pytest.mark.parametrize("kw, output", [({"model": "vae"}, "sigmoid"), ({"model": "ae"}, "sigmoid"),
                                        ({"model": "vae", "likelihood": "gaussian"}, "identity"),
                                        ({"model": "nvdm", "likelihood": "multinomial"}, "softmax")])
def test_the_page_decoder_reproduces_decode_after_the_base64_round_trip(kw, output):
    model = _model(**kw)
    z = np.random.default_rng(1).normal(0, 2, (200, 3))
    layers, found = xd.page_decoder(model, z[:20], documents=kw["model"] == "nvdm")
    assert found == output
    back = xd.import_layers(json.loads(json.dumps(xd.export_layers(layers))))
    for a, b in zip(layers, back):  # bit-exact float32
        assert a.weight.tobytes() == b.weight.tobytes() and a.bias.tobytes() == b.bias.tobytes() and a.act == b.act
    with torch.no_grad():
        mean = model.decode(torch.as_tensor(z, dtype=torch.float32)).mean.double().numpy()
    if output == "softmax":
        mean = mean / mean.sum(-1, keepdims=True)  # word probabilities
    assert np.abs(xd.forward(back, z, output) - mean).max() < 1e-6


def test_a_decoder_the_page_cannot_run_goes_to_the_grid():
    conv = _model(model="conv-vae", latent_dim=2, hidden=(16,))
    assert xd.mlp_layers(conv.decoder) is None
    assert xd.page_decoder(conv, np.zeros((4, 2)), documents=False) is None
    # a plain stack whose output the likelihood does not map by sigmoid/identity/softmax is refused too
    vae = _model(model="vae")
    vae.decode = lambda z: torch.distributions.Normal(vae.decoder(z).exp(), 1.0)
    assert xd.page_decoder(vae, np.zeros((4, 3)), documents=False) is None


def test_the_pca_plane_finds_the_two_widest_directions():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # rows of q.T: true directions, sds 3, 2, 1, 0.5, 0.25
    sds = np.array([3, 2, 1, 0.5, 0.25])
    codes = 1.5 + (rng.normal(size=(20000, 5)) * sds) @ q.T
    pl = xd.plane(codes)
    assert pl.what == "pca" and np.allclose(pl.origin, codes.mean(0))
    # the plane's axes span the two widest true directions: singular values of the overlap are cosines, ~1
    assert np.linalg.svd(pl.axes @ q[:, :2], compute_uv=False).min() > 0.999
    assert np.allclose(pl.sds, sds[2:], rtol=0.03)  # 20000 draws: sd of a sample sd ~ 0.5%
    # a code is its plane coordinates plus its slider values (in sds) along the other directions
    z = codes[:7]
    sliders = (z - pl.origin) @ pl.others.T / pl.sds
    assert np.abs(pl.code(pl.project(z), sliders) - z).max() < 1e-9


def test_a_two_dimensional_latent_is_its_own_plane():
    codes = np.random.default_rng(0).normal(size=(50, 2))
    pl = xd.plane(codes)
    assert pl.what == "latent" and pl.others.shape == (0, 2)
    assert np.array_equal(pl.project(codes), codes) and np.array_equal(pl.code(codes), codes)


def test_the_grid_holds_the_decoder_means_at_its_nodes_row_by_row(run):
    data = inputs.load_data(loading.load_config(run))
    p = explorer.payload(run, decoder="grid", data=data)
    assert p["decoder"]["mode"] == "grid" and "grid" in p["note"]
    n, (x0, x1, y0, y1) = p["decoder"]["n"], p["extent"]
    nodes = xd.unb64(p["decoder"]["nodes"], "u1").reshape(n, n, 64)  # (b index, a index, pixels)
    model = vaelab.load(run)
    for i, j in ((0, 0), (n - 1, 0), (3, n - 2), (n // 2, n // 3)):  # a index i, b index j
        a, b = x0 + (x1 - x0) * i / (n - 1), y0 + (y1 - y0) * j / (n - 1)
        with torch.no_grad():
            mean = model.decode(torch.tensor([[a, b]], dtype=torch.float32)).mean[0].numpy()
        assert np.abs(nodes[j, i].astype(int) - np.round(255 * mean)).max() <= 1


def test_the_payload_holds_the_test_images_codes_and_class_names(run):
    data = inputs.load_data(loading.load_config(run))
    p = explorer.payload(run, points=50, data=data)
    assert p["decoder"]["mode"] == "page" and p["n"] == 50 and p["label_names"] == [str(i) for i in range(10)]
    idx = np.array(p["index"])
    images = xd.unb64(p["examples"], "u1").reshape(50, 64)
    assert np.array_equal(images, np.round(data.test.numpy()[idx] / 16 * 255))  # the grey images, 0..16 -> 0..255
    assert np.array_equal(xd.unb64(p["labels"], "<i4"), data.y_test.numpy()[idx])
    with torch.no_grad():
        codes = vaelab.load(run).embed(data.test[idx].float() / 16).numpy()
    assert np.abs(xd.unb64(p["codes"], "<f4").reshape(50, 2) - codes).max() < 1e-6


def test_the_traversal_sweeps_the_prior_s_quantiles_over_the_widest_dimensions():
    """The values are N(0, 1)'s quantiles at (i + 0.5) / 9 (scipy's, not torch's); over 16 dimensions the 16
    whose codes vary most are swept; an autoencoder (no prior) has no traversal."""
    from scipy.stats import norm

    codes = np.random.default_rng(0).normal(0, 1, (200, 20)) * np.arange(1, 21)  # dimension j's sd ~ j + 1
    codes[:, [2, 7]] *= 100  # two narrow ones made the widest
    t = explorer._traversal(_model(latent_dim=20), codes)
    values = xd.unb64(t["values"], "<f4").reshape(9, 20)
    want = norm.ppf((np.arange(9) + 0.5) / 9)
    assert np.abs(values - want[:, None]).max() < 1e-6 and t["what"] == "quantiles of the prior"
    assert t["dims"] == [2] + list(range(5, 20))  # 0, 1, 3 and 4: the four narrowest left out
    assert explorer._traversal(_model(model="ae"), codes) is None


def test_a_page_drawn_from_the_grid_carries_no_traversal(run):
    assert explorer.payload(run, points=10)["traversal"] is not None
    assert explorer.payload(run, points=10, decoder="grid")["traversal"] is None  # the page cannot decode it


def test_label_names():
    assert label_names(SimpleNamespace(name="fashion-mnist"))[9] == "Ankle boot" and len(FASHION_MNIST) == 10
    assert label_names(SimpleNamespace(name="npz:x.npz")) is None
    assert label_names(SimpleNamespace(name="corpus:x", label_names=("a", "b"))) == ("a", "b")


def test_explore_command_writes_a_page_that_loads_nothing(run, capsys):
    assert cli(["explore", str(run), "--points", "100"]) == 0
    html = (run / "explorer.html").read_text()
    assert "default-src 'none'" in html  # the page's own CSP forbids every request
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", html)
    assert "explorer.html" in capsys.readouterr().out


def test_explore_refuses_bad_input(tmp_path, run, capsys):
    assert "not a vaelab run folder" in expect_error(["explore", str(tmp_path)], capsys)
    assert "points must be at least 2" in expect_error(["explore", str(run), "--points", "1"], capsys)
    assert not (tmp_path / "explorer.html").exists()


def test_train_writes_the_explorer_beside_the_report_unless_told_not_to(tmp_path, capsys):
    args = ["-q", "train", "--data", "digits", "--hidden", "16", "--latent-dim", "3", "--epochs", "1",
            "--eval-k", "5"]
    assert cli(args + ["--out", str(tmp_path / "with")]) == 0
    page = (tmp_path / "with" / "explorer.html").read_text()
    assert '"latent_dim":3' in page and '"what":"pca"' in page  # 3-D latent: the PCA plane and one slider
    assert 'href="./explorer.html"' in (tmp_path / "with" / "report.html").read_text()
    assert cli(args + ["--out", str(tmp_path / "without"), "--no-explorer"]) == 0
    assert not (tmp_path / "without" / "explorer.html").exists()
    assert "explorer.html" not in (tmp_path / "without" / "report.html").read_text()


def test_the_embedded_payload_holds_no_character_the_html_parser_reads():
    """Without a browser: the JSON in <script type=application/json> has no <, > or & (nor U+2028/9) and parses
    back to the payload, whatever the words are; the page's other placeholders are not substituted inside it."""
    words = ["<!--<script>", "</script><script>x=1</script>", "a&b>c", "\u2028\u2029", "{{SCRIPT}}", "{{TITLE}}"]
    data = {"title": "</title><script>x=1</script>", "vocabulary": words}
    html = explorer.page(data)
    blob = re.search(r'<script id="payload" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert not set(blob) & {"<", ">", "&", "\u2028", "\u2029"} and json.loads(blob) == data
    assert html.count("</script>") == 2 and "<title>&lt;/title&gt;&lt;script&gt;" in html


@pytest.fixture(scope="module")
def cvae(tmp_path_factory):
    """A conditional VAE (Sohn et al. 2015) on the digits: its decoder reads [z, onehot(y)]."""
    return vaelab.train(out=tmp_path_factory.mktemp("c") / "cvae", **(SMALL | dict(conditional=True)))


def test_a_conditional_payload_decodes_z_with_the_class_and_codes_with_the_own_label(cvae):
    data = inputs.load_data(loading.load_config(cvae))  # rows (N, 64 + 10): the image, then its one-hot label
    p = explorer.payload(cvae, points=40, data=data)
    assert p["classes"] == [str(i) for i in range(10)] and p["decoder"]["mode"] == "page"
    assert "[z, onehot(y)]" in p["note"]
    model = vaelab.load(cvae)
    layers = xd.import_layers(p["decoder"]["layers"])
    assert layers[0].weight.shape[1] == 2 + 10
    z = np.array([[0.3, -0.8], [1.1, 0.4]])
    for y in (0, 7):  # the page's arithmetic on [z, onehot(y)] is model.decode(z, y)
        hot = np.eye(10)[[y, y]]
        with torch.no_grad():
            want = model.decode(torch.tensor(z, dtype=torch.float32), torch.tensor(hot, dtype=torch.float32)).mean
        assert np.abs(xd.forward(layers, np.concatenate([z, hot], 1), "sigmoid") - want.numpy()).max() < 1e-5
    idx = np.array(p["index"])
    images = xd.unb64(p["examples"], "u1").reshape(40, 64)  # the images alone: the label columns are cut
    assert np.array_equal(images, np.round(data.test.numpy()[idx, :64] / 16 * 255))
    with torch.no_grad():  # each code is E_q[z | x, y] with the example's own label
        codes = model.embed(data.test[idx].float() / 16).numpy()
    assert np.abs(xd.unb64(p["codes"], "<f4").reshape(40, 2) - codes).max() < 1e-6
    grid = explorer.payload(cvae, points=40, data=data, decoder="grid")
    n, (x0, x1, y0, y1) = grid["decoder"]["n"], grid["extent"]
    nodes = xd.unb64(grid["decoder"]["nodes"], "u1").reshape(10, n, n, 64)  # one grid per class
    for y, i, j in ((0, 0, 0), (4, n - 1, 2), (9, n // 2, n - 1)):
        a, b = x0 + (x1 - x0) * i / (n - 1), y0 + (y1 - y0) * j / (n - 1)
        with torch.no_grad():
            mean = model.decode(torch.tensor([[a, b]]), torch.eye(10)[[y]]).mean[0].numpy()
        assert np.abs(nodes[y, j, i].astype(int) - np.round(255 * mean)).max() <= 1
    assert np.abs(nodes[0].astype(int) - nodes[9]).max() > 20  # the class changes the decoded pictures
