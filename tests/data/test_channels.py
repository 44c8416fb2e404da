"""Colour images end to end: npz in (N, C, H, W) or (N, H, W, C), folder:PATH in colour or converted, the bundled
photo-patches, colour plots; a channel count the data does not have is one error line, exit 2, nothing written."""

import re

import numpy as np
import pytest
import torch
from clitools import expect_error
from PIL import Image

from vaelab.cli.main import run as cli
from vaelab.data import load_images, photos
from vaelab.errors import DataError

FAST = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "64", "--device", "cpu", "--eval-k", "5"]


def _colour(n=40, h=8, w=8, seed=0):
    """(N, H, W, 3) uint8 images, each pixel's channels different."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def test_npz_in_either_layout_is_stored_channel_major(tmp_path):
    a = _colour()
    np.savez(tmp_path / "last.npz", x=a)
    np.savez(tmp_path / "first.npz", x=a.transpose(0, 3, 1, 2))
    last, first = (load_images(f"npz:{tmp_path / f}.npz") for f in ("last", "first"))
    assert last.shape == first.shape == (3, 8, 8)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(last, split), getattr(first, split))
    # a stored row is (R plane, G plane, B plane), each row-major: the first values are the red channel's
    row = last.test[0].numpy().reshape(3, 8, 8)
    assert any(np.array_equal(row, a[i].transpose(2, 0, 1)) for i in range(len(a)))


@pytest.mark.parametrize("shape,why", [((10, 3, 8, 3), "cannot be told apart"), ((10, 5, 8, 8), "C = 1 (grey) or 3"),
                                       ((10, 2, 2, 2, 2), "expected (N, D)")])
def test_npz_layouts_that_cannot_be_read_are_refused(tmp_path, shape, why):
    np.savez(tmp_path / "x.npz", x=np.zeros(shape, dtype=np.uint8))
    with pytest.raises(DataError, match=re.escape(why)):
        load_images(f"npz:{tmp_path / 'x.npz'}")


def _folder(root, colours):
    """root/<class>/<i>.png, 6x6 images each of one colour (a PIL mode and value)."""
    for i, (mode, value) in enumerate(colours):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.new(mode, (6, 6), value).save(d / f"{i}.png")
    return root


def test_folder_keeps_colour_or_converts_as_asked(tmp_path):
    rgb = _folder(tmp_path / "rgb", [("RGB", (255, 0, 0)), ("L", 200), ("RGB", (0, 0, 255)), ("L", 10)] * 2)
    grey = _folder(tmp_path / "grey", [("L", 200), ("L", 10)] * 4)
    data = load_images(f"folder:{rgb}", image_size=4)
    assert data.shape == (3, 4, 4)
    values = {tuple(r.reshape(3, 16)[:, 0].tolist()) for r in torch.cat([data.train, data.val, data.test])}
    assert values == {(255, 0, 0), (0, 0, 255), (200, 200, 200), (10, 10, 10)}  # grey images become R = G = B
    assert load_images(f"folder:{grey}", image_size=4).shape == (1, 4, 4)  # what the images are: grey
    as_grey = load_images(f"folder:{rgb}", image_size=4, channels=1)
    # ITU-R 601-2 luma, PIL's L: red 255 -> 255 * 299/1000 = 76, blue 255 -> 255 * 114/1000 = 29
    assert as_grey.shape == (1, 4, 4)
    assert {int(r[0]) for r in torch.cat([as_grey.train, as_grey.val, as_grey.test])} == {76, 29, 200, 10}
    as_rgb = load_images(f"folder:{grey}", image_size=4, channels=3)
    assert as_rgb.shape == (3, 4, 4) and torch.equal(as_rgb.test[:, :16], as_rgb.test[:, 32:])


def test_photo_patches_are_the_halved_photographs_cut_into_8x8(tmp_path):
    from sklearn.datasets import load_sample_images

    x, y = photos.patches()
    assert x.shape == (2080, 3, 8, 8) and x.dtype == np.uint8 and np.bincount(y).tolist() == [1040, 1040]
    flower = load_sample_images().images[1].astype(np.float64)  # (427, 640, 3)
    # patch (row 3, column 7) of the flower: a box filter halving exactly is the mean of 2x2 blocks
    block = flower[48:64, 112:128].reshape(8, 2, 8, 2, 3).mean((1, 3)).transpose(2, 0, 1)
    closest = np.abs(x[y == 1].astype(np.float64) - block).max((1, 2, 3)).min()
    assert closest <= 1.0  # PIL rounds to whole levels
    data = load_images("photo-patches")
    assert data.shape == (3, 8, 8) and len(data.train) + len(data.val) + len(data.test) == 2080


def test_a_channel_count_the_data_lacks_is_one_error_line_and_nothing_written(tmp_path, capsys):
    np.savez(tmp_path / "c.npz", x=_colour())
    out = tmp_path / "run"
    err = expect_error(["train", "--data", f"npz:{tmp_path / 'c.npz'}", "--channels", "1", "--out", str(out),
                        *FAST], capsys)
    assert "3 channels, not channels = 1" in err and not out.exists()
    err = expect_error(["train", "--data", "digits", "--channels", "3", "--out", str(out), *FAST], capsys)
    assert "1 channel, not channels = 3" in err and not out.exists()
    np.savez(tmp_path / "flat.npz", x=np.zeros((20, 64), dtype=np.uint8))
    err = expect_error(["train", "--data", f"npz:{tmp_path / 'flat.npz'}", "--channels", "3", "--out", str(out),
                        *FAST], capsys)
    assert "flat vectors" in err and not out.exists()
    err = expect_error(["train", "--data", "photo-patches", "--model", "pixelcnn", "--set", "pixel_channels=2",
                        "--out", str(out)], capsys)
    assert "pixel_channels >= 3" in err and not out.exists()  # one group of features per colour


def test_a_conv_vae_on_colour_draws_colour_plots(tmp_path):
    out = tmp_path / "run"
    assert cli(["-q", "train", "--data", "photo-patches", "--model", "conv-vae", "--epochs", "1", "--out", str(out),
                "--no-explorer", *FAST]) == 0
    for kind in ("recon", "samples", "manifold", "interp"):
        png = np.asarray(Image.open(out / "plots" / f"{kind}.png").convert("RGB")).astype(int)
        # colour pictures: pixels whose channels differ (a grey plot has R = G = B everywhere but its text)
        assert (np.abs(png[..., 0] - png[..., 2]) > 20).mean() > 0.01, kind


def test_npy_streams_channel_major_colour_and_refuses_channel_last(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    a = _colour(n=60).transpose(0, 3, 1, 2).copy()  # (N, 3, 8, 8)
    np.save(root / "x_train.npy", a)
    np.save(root / "x_test.npy", a[:10])
    data = load_images(f"npy:{root}")
    assert data.shape == (3, 8, 8) and torch.equal(data.test, torch.from_numpy(a[:10].reshape(10, 192)))
    np.save(root / "x_train.npy", a.transpose(0, 2, 3, 1).copy())  # (N, 8, 8, 3): streamed rows are not transposed
    with pytest.raises(DataError, match=re.escape("(N, C, H, W) with C = 1 or 3")):
        load_images(f"npy:{root}")
