"""The generated shapes data (data/shapes.py): a complete factor grid, each factor visible, deterministic splits."""

import itertools

import numpy as np
import torch

from vaelab.data import load_images, shapes
from vaelab.data.labels import SHAPES


def test_the_grid_is_complete_and_every_image_differs():
    images, factors = shapes.generate()
    sizes = (3, 4, 8, 8, 8)
    assert images.shape == (3 * 4 * 8 * 8 * 8, 32, 32) and factors.shape == (len(images), 5)
    assert set(map(tuple, factors.tolist())) == set(itertools.product(*map(range, sizes)))
    assert set(np.unique(images)) == {0, 1}
    assert len(np.unique(images.reshape(len(images), -1), axis=0)) == len(images)  # no two combinations alike


def test_each_factor_changes_the_image_everywhere():
    images, factors = shapes.generate()
    at = {tuple(f): i for i, f in enumerate(factors.tolist())}
    for j, name in enumerate(shapes.FACTOR_NAMES):
        for i, f in enumerate(factors.tolist()):
            if f[j] + 1 <= factors[:, j].max():
                g = list(f)
                g[j] += 1
                assert (images[i] != images[at[tuple(g)]]).any(), (name, f)


def test_factors_mean_what_they_name():
    _, factors = shapes.generate()
    one = lambda *f: shapes.render(np.array([f]))[0].astype(float)  # noqa: E731
    rows, cols = np.arange(32)[:, None], np.arange(32)[None, :]

    def centre(im):  # centre of mass, in pixels (pixel i's centre is i + 0.5)
        return float((im * cols).sum() / im.sum()) + 0.5, float((im * rows).sum() / im.sum()) + 0.5

    # a square at rotation 0 is the 2s x 2s box around (x, y): its area and centre by hand
    im = one(0, 3, 0, 2, 5)
    assert im.sum() == (2 * 6) ** 2 and centre(im) == (shapes.POSITIONS[2], shapes.POSITIONS[5])
    assert one(0, 3, 0, 5, 5).sum() == im.sum() and centre(one(0, 3, 0, 5, 5))[0] == shapes.POSITIONS[5]
    assert one(0, 0, 0, 2, 5).sum() < one(0, 1, 0, 2, 5).sum() < im.sum()  # scale grows the area
    assert abs(one(1, 3, 0, 4, 4).sum() - np.pi * 6 * 3.6) < 6  # the ellipse's area pi a b, within its rim


def test_deterministic_splits_with_factors_as_labels():
    a, b = load_images("shapes", val_fraction=0.1, split_seed=3), load_images("shapes", val_fraction=0.1, split_seed=3)
    images, factors = shapes.generate()
    flat = {bytes(im.reshape(-1)): f for im, f in zip(images, factors.tolist())}
    for split in ("train", "val", "test"):
        x, f = getattr(a, split), getattr(a, f"factors_{split}")
        assert torch.equal(x, getattr(b, split)) and torch.equal(f, getattr(b, f"factors_{split}"))
        assert [flat[bytes(row.numpy())] for row in x] == f.tolist()  # each image's own factors
        assert torch.equal(getattr(a, f"y_{split}"), f[:, 0])
    assert len(a.train) + len(a.val) + len(a.test) == len(images) and len(a.test) == round(0.2 * len(images))
    assert a.shape == (1, 32, 32) and a.factor_names == shapes.FACTOR_NAMES and len(SHAPES) == 3
    other = load_images("shapes", val_fraction=0.1, split_seed=4)
    assert torch.equal(other.test, a.test) and not torch.equal(other.val, a.val)  # test fixed, val by seed
