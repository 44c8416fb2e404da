"""The categorical rungs (256 grey levels per pixel): exact counts, normalisation, and EM on a known mixture."""

import math

import numpy as np
import pytest
import torch

from vaelab.baselines import categorical as cat
from vaelab.cli.main import run as cli


def _grey(levels: np.ndarray) -> torch.Tensor:
    """Integer levels (N, D) as the grey values in [0, 1] that the loaders give."""
    return torch.from_numpy(levels / 255.0)


def test_single_is_the_smoothed_level_frequency_of_each_pixel():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(500, 3)) // 7 * 7  # a few levels only: most of the 256 are unseen
    test = rng.integers(0, 256, size=(50, 3))
    model = cat.categorical_single(_grey(train))
    # by hand: (count of the level at pixel d + 1/256) / (N + 1), multiplied over the pixels
    expect = np.zeros(len(test))
    for d in range(3):
        counts = np.bincount(train[:, d], minlength=256)
        expect += np.log((counts[test[:, d]] + 1 / 256) / (len(train) + 1.0))
    assert np.allclose(model.log_prob(_grey(test)).numpy(), expect, atol=1e-10)


def test_single_and_mixture_are_normalised_over_all_256_levels():
    rng = np.random.default_rng(1)
    train = _grey(rng.integers(0, 256, size=(300, 1)))
    every_level = _grey(np.arange(256)[:, None])  # (256, 1): all the values one pixel can take
    for model in (cat.categorical_single(train), cat.categorical_mixture_em(train, 3, max_iter=5)):
        assert math.isclose(float(model.log_prob(every_level).exp().sum()), 1.0, abs_tol=1e-9)


def test_one_component_mixture_is_the_single_categorical():
    train = _grey(np.random.default_rng(2).integers(0, 256, size=(200, 4)))
    single, mix = cat.categorical_single(train), cat.categorical_mixture_em(train, 1, max_iter=3)
    assert torch.allclose(single.log_prob(train), mix.log_prob(train), atol=1e-9)


def test_em_recovers_two_separated_components_and_never_decreases():
    # half the images use levels 0..3 in each of 3 pixels, half 200..203: log p(x) = log 1/2 + 3 log 1/4
    rng = np.random.default_rng(3)
    n = 40_000
    which = rng.integers(0, 2, size=(n, 1))
    train = rng.integers(0, 4, size=(n, 3)) + 200 * which
    mix = cat.categorical_mixture_em(_grey(train), 2, seed=0)
    assert all(b >= a - 1e-9 for a, b in zip(mix.objective, mix.objective[1:]))
    true_nll = -(math.log(0.5) + 3 * math.log(0.25))  # 4.852
    nll = -float(mix.log_prob(_grey(train[:2000])).mean())
    # smoothing costs < 0.001 nat at 20,000 rows per component; one product costs log 8 - log 4 per pixel more
    assert nll == pytest.approx(true_nll, abs=0.01)
    single = -float(cat.categorical_single(_grey(train)).log_prob(_grey(train[:2000])).mean())
    assert single > true_nll + 1.3


def test_baseline_command_scores_categorical_digits(tmp_path):
    out = tmp_path / "single"
    assert cli(["-q", "baseline", "--model", "single", "--likelihood", "categorical", "--out", str(out)]) == 0
    import json
    result = json.loads((out / "baseline.json").read_text())
    assert result["likelihood"] == "categorical" and "categorical" in result["family"]
    # digits have 17 grey levels per pixel: at most log 17 nats each, 64 pixels, and well under that
    assert 0 < result["nll"] < 64 * math.log(17)
    mix = tmp_path / "mix"
    assert cli(["-q", "baseline", "--model", "mixture", "--components", "10", "--likelihood", "categorical",
                "--out", str(mix)]) == 0
    assert json.loads((mix / "baseline.json").read_text())["nll"] < result["nll"]
