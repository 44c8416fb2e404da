"""Baselines: EM recovers known mixtures, exact densities agree across implementations, same test points."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from clitools import expect_error as _bad

from vaelab.baselines import mixtures as B
from vaelab.cli.main import run as cli
from vaelab.config import schema as cfg
from vaelab.data import dequantize
from vaelab.runs import inputs


def _mixture_data(n, seed=0):
    """Three well-separated 20-D Bernoulli products with weights 0.5, 0.3, 0.2."""
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor([[0.9] * 10 + [0.1] * 10, [0.1] * 10 + [0.9] * 10, [0.5] * 20])
    weights = torch.tensor([0.5, 0.3, 0.2])
    comp = torch.multinomial(weights, n, replacement=True, generator=g)
    x = (torch.rand(n, 20, generator=g) < means[comp]).float()
    return x, B.BernoulliMixture(weights, means, [], True)


def test_em_recovers_a_known_bernoulli_mixture():
    x, truth = _mixture_data(6000)
    x_test, _ = _mixture_data(3000, seed=1)
    fit = B.bernoulli_mixture_em(x, 3, seed=0)
    best = min(itertools.permutations(range(3)), key=lambda p: float((fit.means[list(p)] - truth.means).abs().sum()))
    assert float((fit.means[list(best)] - truth.means).abs().max()) < 0.04
    assert float((fit.weights[list(best)] - truth.weights).abs().max()) < 0.03
    # the fitted model scores held-out data as well as the true one (within 0.02 nats)
    assert abs(float(fit.log_prob(x_test).mean() - truth.log_prob(x_test).mean())) < 0.02
    assert fit.converged


def test_em_never_decreases_its_objective():
    x, _ = _mixture_data(2000)
    trace = B.bernoulli_mixture_em(x, 5, seed=3, max_iter=60, tol=0.0).objective
    assert len(trace) == 60 and all(b >= a - 1e-5 for a, b in zip(trace, trace[1:]))


def test_one_component_mixture_is_the_independent_bernoulli():
    x, _ = _mixture_data(1000)
    fit = B.bernoulli_mixture_em(x, 1, max_iter=5)
    mu = (x.sum(0) + B.SMOOTHING) / (len(x) + 2 * B.SMOOTHING)
    expected = (x * mu.log() + (1 - x) * torch.log1p(-mu)).sum(1)
    assert torch.allclose(fit.log_prob(x), expected, atol=1e-4)


def test_dequantize_stays_in_its_bin():
    v = torch.arange(256, dtype=torch.float32).repeat(40, 1)  # (40, 256) every level
    x = dequantize(v / 255, 1 / 255, torch.Generator().manual_seed(0))
    assert torch.equal(torch.floor(x * 256), v)  # level v -> [v/256, (v+1)/256)
    assert abs(float((x * 256 - v).mean()) - 0.5) < 0.01  # uniform within the bin


@pytest.fixture(scope="module")
def digits_gauss():
    c = cfg.Config(likelihood="gaussian-learned", dequantize=True)
    return c, inputs.load_data(c)


def test_gaussian_single_full_equals_a_one_component_sklearn_mixture(digits_gauss):
    c, data = digits_gauss
    single = B.BASELINES["single"].fit(c, data, B.Options(covariance="full"))
    gmm = B.BASELINES["mixture"].fit(c, data, B.Options(components=1, covariance="full"))
    for key in ("nll", "val_nll", "train_nll"):
        assert single[key] == pytest.approx(gmm[key], abs=1e-6)


def test_gaussian_single_diag_is_a_sum_of_one_dimensional_densities(digits_gauss):
    c, data = digits_gauss
    r = B.BASELINES["single"].fit(c, data, B.Options(covariance="diag"))
    dev = torch.device("cpu")
    tr = inputs.eval_inputs(c, data, "train", dev).double().numpy()
    te = inputs.eval_inputs(c, data, "test", dev).double().numpy()
    m, v = tr.mean(0), tr.var(0) + B.REG_COVAR
    nll = (0.5 * np.log(2 * np.pi * v) + 0.5 * (te - m) ** 2 / v).sum(1).mean()
    assert r["nll"] == pytest.approx(nll, rel=1e-9)
    assert r["params"] == 2 * 64


def test_ladder_on_digits_mixture_beats_single(tmp_path):
    c = cfg.Config()
    single = B.fit("single", c, B.Options(), tmp_path / "s")
    mix = B.fit("mixture", c, B.Options(components=10), tmp_path / "m")
    assert mix["nll"] < single["nll"] - 2.0  # 23.7 vs 26.9 nats when measured
    assert single["test_inputs"] == mix["test_inputs"] and single["n"] == 359
    # the independent-pixel number in docs/RESULTS.md's digits section, same binarized test points
    assert single["nll"] == pytest.approx(26.91, abs=0.01)


def test_baseline_command_writes_json_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "b"
    assert cli(["baseline", "--model", "single", "--out", str(out)]) == 0
    data = json.loads((out / "baseline.json").read_text())
    assert data["baseline"] == "single" and math.isfinite(data["nll"]) and data["likelihood"] == "bernoulli"
    before = (out / "baseline.json").read_bytes()
    assert f"{out} already holds a baseline; --overwrite replaces it" in _bad(["baseline", "--model", "mixture",
                                                                               "--out", str(out)], capsys)
    assert (out / "baseline.json").read_bytes() == before
    err = _bad(["baseline", "--model", "single", "--likelihood", "gaussian", "--out", str(tmp_path / "g")], capsys)
    assert "dequantize" in err and not (tmp_path / "g").exists()
    _bad(["baseline", "--model", "mixture", "--components", "5000", "--out", str(tmp_path / "k")], capsys)
    assert not (tmp_path / "k").exists()
    _bad(["baseline", "--model", "single", "--data", "nope", "--out", str(tmp_path / "n")], capsys)
    assert not (tmp_path / "n").exists()
