"""Latent space through training: plots from the weights of a kept epoch, and the animation across them."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import torch
from clitools import expect_error
from PIL import Image

import vaelab
from vaelab.cli.main import run as cli
from vaelab.data import rows
from vaelab.reports import animation, views
from vaelab.runs import loading


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    out = tmp_path_factory.mktemp("kept") / "run"
    return vaelab.train(data="digits", epochs=3, save_every=1, hidden=(16,), latent_dim=2, batch_size=64, eval_k=4,
                        out=out, finish=True)


def test_plot_epoch_n_uses_epoch_ns_weights(kept, capsys):
    view = views.RunView(kept, epoch=1)
    _, model = loading.load_model(kept, weights="epochs/epoch-001.safetensors")
    with torch.no_grad():
        expected = model.embed(view.x).numpy()  # epoch 1's encoder on the same test inputs
    assert np.array_equal(view.codes(), expected)
    final = views.RunView(kept).codes()
    assert np.abs(view.codes() - final).max() > 1e-3  # not the final weights' codes
    assert cli(["plot", str(kept), "--kind", "latent", "--epoch", "1"]) == 0
    assert (kept / "plots" / "latent-epoch-001.png").is_file()
    assert "kept epochs: 1, 2, 3" in expect_error(["plot", str(kept), "--kind", "latent", "--epoch", "7"], capsys)


def test_the_animation_has_one_frame_per_kept_epoch_and_the_report_shows_it(kept):
    gif = kept / "plots" / "latent-epochs.gif"  # drawn by train's finish, since epochs were kept
    with Image.open(gif) as im:
        assert im.n_frames == 3
        frames = []
        for i in range(3):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    assert np.abs(frames[0] - frames[2]).max() > 0  # the codes moved
    page = (kept / "report.html").read_text()
    uri = re.search(r'src="data:image/gif;base64,([A-Za-z0-9+/=]+)" alt="latent-epochs:', page)
    assert uri and base64.b64decode(uri[1]) == gif.read_bytes()
    assert "latent-epoch-001" not in page  # a single epoch's plot stays out of the report


def test_frames_keep_the_first_and_last_epoch_and_pca_signs_agree():
    assert animation.frames(list(range(1, 101)), most=5) == [1, 26, 51, 75, 100]
    assert animation.frames([2, 4], most=5) == [2, 4]
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 5)) * [5.0, 2.0, 0.1, 0.1, 0.1]
    (a, b), _ = animation.project([z, -z])  # PCA alone maps -z to minus z's projection: a jump between frames
    assert np.allclose(a, b, atol=1e-8)  # aligned, the two frames agree


def test_the_reconstruction_row_shows_the_grey_image(kept):
    view = views.RunView(kept)
    grey = rows(view.data.test[:16], None, view.data.scale).numpy()
    assert 0 < ((grey > 0) & (grey < 1)).mean()  # digits have grey levels; a binarization has none
    assert not np.array_equal(grey, view.x[:16].numpy())  # and the model's scored input is that binarization
    picture = np.asarray(Image.open(kept / "plots" / "recon.png").convert("L"), dtype=np.float64)
    assert len(np.unique(picture)) > 20  # grey data and grey means, not two speckled levels
