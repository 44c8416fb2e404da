"""Interpolation and traversal plots of a conditional VAE (Sohn et al. 2015): both ends (or the traversal's image)
come from the chosen class and the path is decoded with that class's label, checked tile by tile against the
decoder's means computed by hand."""

import numpy as np
import pytest
import torch
from clitools import expect_error

from vaelab.cli.main import run as cli
from vaelab.errors import VaelabError
from vaelab.reports import plots, views

FLAGS = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "128", "--device", "cpu"]


@pytest.fixture(scope="module")
def cvae(tmp_path_factory):
    out = tmp_path_factory.mktemp("cvae") / "run"
    assert cli(["-q", "train", "--conditional", "--epochs", "1", "--no-report", "--out", str(out), *FLAGS]) == 0
    return out


def _tiles(fig, rows: int, cols: int) -> np.ndarray:
    """The drawn picture cut into its (rows, cols) 8 x 8 tiles (a 1-pixel gutter around each)."""
    (image,) = fig.axes[0].get_images()
    picture = np.asarray(image.get_array())
    return picture[1:, 1:].reshape(rows, 9, cols, 9)[:, :8, :, :8].transpose(0, 2, 1, 3)  # (rows, cols, 8, 8)


def _capture(monkeypatch) -> list:
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    return figures


def test_interpolation_joins_two_images_of_the_class_and_decodes_with_its_label(cvae, monkeypatch):
    figures = _capture(monkeypatch)
    view = views.RunView(cvae)
    labels = view.x[:, view.data.dim:].argmax(1)  # (N,) each test row's class
    tiles = {}
    for y in (3, 8):
        view.interp(rows=2, steps=4, y=y)
        tiles[y] = _tiles(figures[-1], 2, 6)
        assert f"given y = {y}" in figures[-1].axes[0].get_title()
        # the ends are test images of class y (framed data columns): find each among the test images of that class
        images = view.x[:, :view.data.dim].reshape(-1, 8, 8).numpy()
        for r in range(2):
            for end in (tiles[y][r, 0], tiles[y][r, 5]):
                match = np.flatnonzero(np.abs(images - end).reshape(len(images), -1).max(1) < 1e-6)
                assert len(match) and all(int(labels[m]) == y for m in match)
            # the path by hand: posterior means of the two ends, straight line, p(x | z, y) means with y's one-hot
            a, b = (np.flatnonzero(np.abs(images - tiles[y][r, c]).reshape(len(images), -1).max(1) < 1e-6)[0]
                    for c in (0, 5))
            with torch.no_grad():
                z = view.model.embed(view.x[[a, b]])  # (2, Dz)
                t = torch.linspace(0, 1, 4)[:, None]
                path = z[:1] * (1 - t) + z[1:] * t
                means = view.model.decode(path, torch.eye(10)[[y] * 4]).mean.reshape(4, 8, 8).numpy()
            assert np.allclose(tiles[y][r, 1:5], means, atol=1e-6)
    # the class changes the picture: the same latent path decoded with another label differs
    with torch.no_grad():
        other = view.model.decode(path, torch.eye(10)[[3] * 4]).mean.reshape(4, 8, 8).numpy()
    assert np.abs(other - tiles[8][1, 1:5]).max() > 0.01


def test_traversal_starts_from_an_image_of_the_class_and_decodes_with_its_label(cvae, monkeypatch):
    figures = _capture(monkeypatch)
    view = views.RunView(cvae)
    labels = view.x[:, view.data.dim:].argmax(1)
    images = view.x[:, :view.data.dim].reshape(-1, 8, 8).numpy()
    drawn = {}
    for y in (2, 6):
        view.traversal(steps=3, y=y)
        drawn[y] = _tiles(figures[-1], 2, 4)  # 2 latent dims, the data column then 3 steps
        assert f"given y = {y}" in figures[-1].axes[0].get_title()
        (pick,) = np.flatnonzero(np.abs(images - drawn[y][0, 0]).reshape(len(images), -1).max(1) < 1e-6)[:1]
        assert int(labels[pick]) == y
        quantiles, _ = views.grid_quantiles(view.model, 3, view.codes)  # (3, Dz)
        with torch.no_grad():
            base = view.model.embed(view.x[pick:pick + 1])
            for dim in range(2):
                z = base.repeat(3, 1)
                z[:, dim] = torch.as_tensor(quantiles[:, dim], dtype=z.dtype)
                means = view.model.decode(z, torch.eye(10)[[y] * 3]).mean.reshape(3, 8, 8).numpy()
                assert np.allclose(drawn[y][dim, 1:], means, atol=1e-6)
    assert np.abs(drawn[2][:, 1:] - drawn[6][:, 1:]).max() > 0.01  # the class changes the picture


def test_a_class_the_model_lacks_is_one_error_and_plain_models_refuse_a_class(cvae, tmp_path, capsys):
    view = views.RunView(cvae)
    for kind in ("interp", "traversal"):
        with pytest.raises(VaelabError, match="0 to 9, not 10"):
            view.make(kind, y=10)
    assert cli(["plot", str(cvae), "--kind", "interp", "--class", "4"]) == 0
    assert cli(["plot", str(cvae), "--kind", "traversal", "--class", "4"]) == 0
    err = expect_error(["plot", str(cvae), "--kind", "traversal", "--class", "12"], capsys)
    assert "0 to 9, not 12" in err
    err = expect_error(["plot", str(cvae), "--kind", "samples", "--class", "4"], capsys)
    assert "--class" in err and "samples" in err
    plain = tmp_path / "vae"
    assert cli(["-q", "train", "--epochs", "1", "--no-report", "--out", str(plain), *FLAGS]) == 0
    err = expect_error(["plot", str(plain), "--kind", "interp", "--class", "4"], capsys)
    assert "only for a conditional model" in err
