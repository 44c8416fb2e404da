"""VQ-VAE (van den Oord et al. 2017): nearest-code quantisation, the EMA codebook update, straight-through gradients,
the commitment loss, codebook usage numbers, and a resumed run equal to one trained straight through."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from clitools import expect_error
from safetensors.torch import load_file

import vaelab
from vaelab.config.schema import Config
from vaelab.estimators import objectives
from vaelab.models import vqvae
from vaelab.models.vqvae import EPS, VectorQuantizer, codebook_terms

TINY = dict(data="digits", model="vqvae", codebook_size=16, code_dim=4, batch_size=128, lr=3e-3, device="cpu")


def _quantizer(codebook, decay=0.5, restart=0.0) -> VectorQuantizer:
    vq = VectorQuantizer(len(codebook), len(codebook[0]), decay=decay, restart=restart)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor(codebook))
        vq.sums.copy_(torch.tensor(codebook))
    return vq


def test_quantisation_picks_the_nearest_code_by_hand():
    vq = _quantizer([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]).eval()
    # z_e (1, C=2, h=1, w=4): points (0.4, 0.1) -> code 0, (0.6, 0.1) -> 1, (0.1, 1.1) -> 2, (0.9, 1.6) -> 2
    # (squared distances of the last: 0.81 + 2.56 = 3.37, 0.01 + 2.56 = 2.57, 0.81 + 0.16 = 0.97)
    z_e = torch.tensor([[[[0.4, 0.6, 0.1, 0.9]], [[0.1, 0.1, 1.1, 1.6]]]])
    q = vq(z_e)
    assert q.codes.tolist() == [[[0, 1, 2, 2]]]
    assert torch.allclose(q.z, torch.tensor([[[[0.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 2.0, 2.0]]]]))
    # commitment: sum of squared distances to the chosen codes, 0.17 + 0.17 + 0.82 + 0.97
    assert q.commitment.item() == pytest.approx(0.17 + 0.17 + 0.82 + 0.97, abs=1e-6)


def test_ema_update_against_hand_computed_values():
    """Two codes, decay 0.75, no restarts; one batch of three vectors, two on code 0 and one on code 1."""
    vq = _quantizer([[0.0, 0.0], [4.0, 4.0]], decay=0.75)  # counts N start at 0, sums m at the codebook
    vq.train()
    z_e = torch.tensor([[[[1.0, -1.0, 5.0]], [[0.0, 2.0, 3.0]]]], requires_grad=True)  # (1, 2, 1, 3)
    vq(z_e)
    # N = 0.75 * 0 + 0.25 * (2, 1) = (0.5, 0.25); m_0 = 0.75 * (0, 0) + 0.25 * ((1, 0) + (-1, 2)) = (0, 0.5)
    # m_1 = 0.75 * (4, 4) + 0.25 * (5, 3) = (4.25, 3.75)
    assert torch.allclose(vq.counts, torch.tensor([0.5, 0.25]))
    assert torch.allclose(vq.sums, torch.tensor([[0.0, 0.5], [4.25, 3.75]]))
    # Laplace smoothing: N~_k = (N_k + eps) / (0.75 + 2 eps) * 0.75; e_k = m_k / N~_k
    smoothed = (torch.tensor([0.5, 0.25]) + EPS) / (0.75 + 2 * EPS) * 0.75
    assert torch.allclose(vq.codebook, torch.tensor([[0.0, 0.5], [4.25, 3.75]]) / smoothed[:, None])
    assert vq.codebook.tolist() == [pytest.approx([0.0, 1.0], rel=1e-4), pytest.approx([17.0, 15.0], rel=1e-4)]
    before = vq.codebook.clone()
    vq.eval()
    vq(z_e)  # evaluation never moves the codebook
    assert torch.equal(vq.codebook, before)


def test_dead_codes_restart_at_encoder_outputs():
    vq = _quantizer([[0.0, 0.0], [100.0, 100.0]], decay=0.5, restart=1.0).train()
    z_e = torch.tensor([[[[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]]]], requires_grad=True)
    torch.manual_seed(0)
    vq(z_e)
    # code 1 got nothing: N_1 = 0 < 1, so it now sits on one of the batch's vectors with N = 1
    assert vq.counts[1].item() == 1.0
    assert any(torch.equal(vq.codebook[1], z_e[0, :, 0, j].detach()) for j in range(3))
    assert vq.counts[0].item() == 1.5  # 0.5 * 3 vectors: alive, kept


def test_straight_through_gradient_is_the_identity_on_the_encoder_output():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 3).train()
    z_e = torch.randn(2, 3, 2, 2, requires_grad=True)
    w = torch.randn(2, 3, 2, 2)
    q = vq(z_e)
    (grad,) = torch.autograd.grad((q.z * w).sum(), z_e)
    assert torch.equal(grad, w)  # d z_q / d z_e = I
    assert torch.allclose(q.z, vq.codebook[q.codes].permute(0, 3, 1, 2), atol=1e-6)  # its values are z_q's
    (grad,) = torch.autograd.grad(q.commitment.sum(), z_e)  # and the commitment pulls z_e toward z_q
    assert torch.allclose(grad, 2 * (z_e - q.z).detach(), atol=1e-6)


def test_the_vq_objective_is_reconstruction_plus_beta_commitment():
    torch.manual_seed(0)
    model = vqvae.build(Config(model="vqvae", codebook_size=8, code_dim=3, commitment=0.25), (1, 8, 8)).eval()
    x = torch.rand(5, 64).round()
    bound = objectives.vq(model, x)
    q = model.quantize(x)
    recon = torch.distributions.Bernoulli(logits=model.decoder(q.z).flatten(1)).log_prob(x).sum(1)
    assert torch.allclose(bound.value, recon, atol=1e-5)  # the reported value: the reconstruction score
    assert bound.loss.detach().item() == pytest.approx(float(-(recon - 0.25 * q.commitment).mean().detach()), rel=1e-5)


def test_codebook_terms_by_hand():
    t = codebook_terms(np.array([2.0, 2.0, 0.0, 4.0]))
    assert (t["codebook_used"], t["dead_codes"], t["codebook_usage"]) == (3, 1, 0.75)
    # p = (1/4, 1/4, 1/2): entropy 1.5 log 2, perplexity 2^1.5
    assert t["codebook_perplexity"] == pytest.approx(2 ** 1.5)


@pytest.mark.precision(kind="auto")  # runs compared alike
def test_resume_one_plus_one_epochs_equals_two(tmp_path):
    quiet = dict(log=lambda s: None, progress=False, finish=False)
    whole = vaelab.train(out=tmp_path / "whole", epochs=2, **quiet, **TINY)
    part = vaelab.train(out=tmp_path / "part", epochs=1, **quiet, **TINY)
    vaelab.train(out=part, resume=True, epochs=2, **quiet)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(part / "model.safetensors"))
    assert a.keys() == b.keys() and {"quantizer.codebook", "quantizer.counts", "quantizer.sums"} <= a.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluation_reports_usage_and_a_reconstruction_score_not_a_bound(tmp_path):
    run = vaelab.train(out=tmp_path / "vq", epochs=2, log=lambda s: None, progress=False, finish=False, **TINY)
    ev = vaelab.evaluate(run)
    assert "elbo" not in ev and "nll" not in ev and "no likelihood bound" in ev["estimators"]["recon"]
    assert ev["codebook_used"] + ev["dead_codes"] == 16 and ev["codebook_usage"] == ev["codebook_used"] / 16
    assert 1 <= ev["codebook_perplexity"] <= ev["codebook_used"]
    assert ev["recon_sq_error"] > 0 and math.isfinite(ev["recon"])


@pytest.mark.parametrize("args", [["--set", "codebook_size=0"], ["--set", "code_dim=0"],
                                  ["--set", "codebook_decay=1"], ["--set", "commitment=-1"]])
def test_bad_codebooks_are_one_line_exit_2_nothing_written(args, tmp_path, capsys):
    expect_error(["train", "--model", "vqvae", *args, "--epochs", "1", "--out", str(tmp_path / "run")], capsys)
    assert not (tmp_path / "run").exists()


def test_codes_are_the_float32_codes_under_bf16_autocast():
    """A bf16 training step must assign the codes evaluation assigns (else a code prior learns other codes)."""
    torch.manual_seed(0)
    model = vqvae.build(Config(model="vqvae", codebook_size=64, code_dim=8), (1, 8, 8)).eval()
    with torch.no_grad():
        model.quantizer.codebook.mul_(0.05)  # codes close together: bf16 rounding would move many across boundaries
    x = torch.rand(512, 64)
    fp32 = model.codes(x)
    z = torch.randn(512, 8) * 0.05
    near = vqvae.nearest(z, model.quantizer.codebook)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(model.codes(x), fp32)
        assert torch.equal(vqvae.nearest(z, model.quantizer.codebook), near)  # the quantizer's distances too


def test_the_vq_estimator_needs_a_codebook(tmp_path, capsys):
    err = expect_error(["train", "--set", "estimator=vq", "--epochs", "1", "--out", str(tmp_path / "run")], capsys)
    assert "vqvae" in err and not (tmp_path / "run").exists()
