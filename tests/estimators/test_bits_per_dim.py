"""Bits per dimension: NLL / (D log 2), and for a density on dequantized L-level data (NLL + D log L) / (D log 2)."""

from __future__ import annotations

import math

import pytest
import torch
from linear_models import one_layer

import vaelab
from vaelab.baselines import mixtures
from vaelab.estimators.evaluation import bits_per_dim, summarize
from vaelab.runs import inputs

DIGIT_LEVELS = 17  # scikit-learn's digits store 0..16


def test_hand_cases():
    # the uniform density on [0, 1)^D of dequantized 8-bit data: -log p(x~) = 0, and each pixel costs 8 bits
    assert bits_per_dim(0.0, 784, 256) == pytest.approx(8.0, rel=1e-15)
    # density 2 on every dimension: -log p = -D log 2, one bit a pixel below the 8 of the uniform
    assert bits_per_dim(-10 * math.log(2), 10, 256) == pytest.approx(7.0, rel=1e-15)
    # binary pixels: no offset, one bit for a fair coin
    assert bits_per_dim(5 * math.log(2), 5) == pytest.approx(1.0, rel=1e-15)


def test_a_gaussian_model_on_dequantized_digits_gets_the_17_level_offset():
    # the linear-Gaussian VAE with a one-dimensional latent and q its exact posterior: every importance
    # weight is p(x), so NLL-k is the exact -log p(x~), known in closed form
    c = vaelab.Config(data="digits", likelihood="gaussian", dequantize=True)
    data = inputs.load_data(c)
    x = inputs.eval_inputs(c, data, "test", torch.device("cpu"))  # (359, 64), seeded dequantization
    assert data.scale == pytest.approx(1 / 16) and float(x.max()) < 1.0
    model, marginal = one_layer(64, 1, inflate=1.0)
    nll = -float(marginal.log_prob(x).double().mean())
    r = summarize(model, x, 4, levels=DIGIT_LEVELS)
    assert r["nll"] == pytest.approx(nll, rel=1e-5)
    assert r["bits_per_dim"] == pytest.approx((nll + 64 * math.log(17)) / (64 * math.log(2)), rel=1e-5)
    assert "log 17" in r["estimators"]["bits_per_dim"]


def test_vae_and_baseline_runs_on_dequantized_digits_report_the_same_kind_of_bits(tmp_path):
    kw = dict(data="digits", likelihood="gaussian", dequantize=True, hidden=(32,), latent_dim=2, device="cpu")
    run = vaelab.train(finish=False, out=tmp_path / "vae", epochs=1, eval_k=5, log=lambda s: None, **kw)
    ev = vaelab.evaluate(run, k=5, write=False)
    assert ev["bits_per_dim"] == pytest.approx((ev["nll"] + 64 * math.log(17)) / (64 * math.log(2)), rel=1e-12)
    base = mixtures.fit("single", vaelab.Config(**kw), mixtures.Options(), tmp_path / "single", log=lambda s: None)
    assert base["bits_per_dim"] == pytest.approx((base["nll"] + 64 * math.log(17)) / (64 * math.log(2)), rel=1e-12)
    # binarized digits: no offset
    run = vaelab.train(finish=False, out=tmp_path / "bin", epochs=1, hidden=(32,), latent_dim=2, device="cpu",
                       log=lambda s: None)
    ev = vaelab.evaluate(run, k=5, write=False)
    assert ev["bits_per_dim"] == pytest.approx(ev["nll"] / (64 * math.log(2)), rel=1e-12)
