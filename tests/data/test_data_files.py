"""Tests for vaelab.data's user-file sources: npz archives and folders of images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clitools import no_downloads

from vaelab.data import idx, load_images
from vaelab.errors import DataError


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test may touch the network, the real cache, $VAELAB_DATA or the system dataset."""
    no_downloads(monkeypatch, tmp_path)
    monkeypatch.setattr(idx, "SYSTEM_DIRS", {})

# --- npz -------------------------------------------------------------------------------------

def test_npz_uint8_images(tmp_path):
    rng = np.random.default_rng(0)
    xtr, xte = rng.integers(0, 256, (20, 5, 6), dtype=np.uint8), rng.integers(0, 256, (4, 5, 6), dtype=np.uint8)
    p = tmp_path / "a.npz"
    np.savez(p, x_train=xtr, x_test=xte, y_train=np.arange(20), y_test=np.arange(4))
    d = load_images(f"npz:{p}", val_fraction=0.25)
    assert d.shape == (1, 5, 6) and d.scale == 1 / 255 and d.train.dtype == torch.uint8
    assert (len(d.train), len(d.val), len(d.test)) == (15, 5, 4)
    assert torch.equal(d.test, torch.from_numpy(xte.reshape(4, 30)))
    assert torch.equal(d.train, torch.from_numpy(xtr.reshape(20, 30))[d.y_train])
    assert sorted(d.y_train.tolist() + d.y_val.tolist()) == list(range(20))


def test_npz_float_flat(tmp_path):
    x = np.linspace(0, 1, 30 * 7, dtype=np.float64).reshape(30, 7)
    p = tmp_path / "f.npz"
    np.savez(p, x_train=x[:25], x_test=x[25:])
    d = load_images(f"npz:{p}", val_fraction=0.2)
    assert d.shape == (7,) and d.scale == 1.0 and d.train.dtype == torch.float32
    assert d.y_train is None and d.y_test is None
    assert torch.allclose(d.test, torch.from_numpy(x[25:]).float())
    assert (len(d.train), len(d.val)) == (20, 5)


def test_npz_x_only_split(tmp_path):
    x = np.arange(50 * 4, dtype=np.uint8).reshape(50, 4)
    p = tmp_path / "x.npz"
    np.savez(p, x=x, y=np.arange(50))
    a = load_images(f"npz:{p}", val_fraction=0.1, split_seed=0)
    b = load_images(f"npz:{p}", val_fraction=0.1, split_seed=9)
    assert (len(a.train), len(a.val), len(a.test)) == (36, 4, 10)
    assert torch.equal(a.test, b.test)
    test_idx = set(a.y_test.tolist())
    assert test_idx.isdisjoint(a.y_train.tolist() + a.y_val.tolist())
    assert sorted(a.y_train.tolist() + a.y_val.tolist() + a.y_test.tolist()) == list(range(50))
    assert torch.equal(a.test, torch.from_numpy(x)[a.y_test])


def test_npz_nan_and_range(tmp_path):
    x = np.full((10, 3), 0.5)
    x[0, 0], x[1, 1], x[2, 2] = np.nan, np.inf, np.nan
    p = tmp_path / "n.npz"
    np.savez(p, x_train=x, x_test=np.zeros((2, 3)))
    with pytest.raises(DataError, match=f"npz:{p}: x_train has 3 NaN/inf values"):
        load_images(f"npz:{p}")
    np.savez(p, x_train=np.full((10, 3), 0.5), x_test=np.full((2, 3), 1.5))
    with pytest.raises(DataError, match=r"x_test float values must lie in \[0, 1\]"):
        load_images(f"npz:{p}")


def test_npz_bad_inputs(tmp_path):
    p = tmp_path / "b.npz"
    with pytest.raises(DataError, match="file not found"):
        load_images(f"npz:{p}")
    np.savez(p, images=np.zeros((3, 4)))
    with pytest.raises(DataError, match="needs arrays x_train and x_test, or x"):
        load_images(f"npz:{p}")
    np.savez(p, x=np.zeros((3, 2, 2, 2)))
    with pytest.raises(DataError, match="expected"):
        load_images(f"npz:{p}")
    np.savez(p, x=np.zeros((10, 4), dtype=np.int64))
    with pytest.raises(DataError, match="dtype int64"):
        load_images(f"npz:{p}")
    np.savez(p, x_train=np.zeros((10, 4)), x_test=np.zeros((2, 4)), y_train=np.zeros(10, int))
    with pytest.raises(DataError, match="y_train and y_test"):
        load_images(f"npz:{p}")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_images(f"npz:{tmp_path / 'junk.npz'}")


# --- folder ----------------------------------------------------------------------------------

def test_folder_of_pngs(tmp_path):
    from PIL import Image

    for cls, value, n in (("b_cats", 200, 6), ("a_dogs", 50, 4)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.new("RGB", (12, 9), (value, value, value)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "a_dogs" / "notes.txt").write_text("ignored")
    d = load_images(f"folder:{tmp_path}", image_size=5, val_fraction=0.25)
    assert d.shape == (1, 5, 5) and d.scale == 1 / 255 and d.train.dtype == torch.uint8
    assert (len(d.train) + len(d.val), len(d.test)) == (8, 2)
    x, y = torch.cat([d.train, d.val, d.test]), torch.cat([d.y_train, d.y_val, d.y_test])
    assert x.shape[1] == 25 and sorted(y.tolist()) == [0] * 4 + [1] * 6
    # Class 0 is "a_dogs" (grey 50), class 1 is "b_cats" (grey 200): labels follow sorted folder names.
    assert torch.all(x[y == 0] == 50) and torch.all(x[y == 1] == 200)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        load_images(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "c").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_images(f"folder:{tmp_path}")
    (tmp_path / "c" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*bad.png"):
        load_images(f"folder:{tmp_path}")
