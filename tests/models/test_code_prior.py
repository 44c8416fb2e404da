"""The PixelCNN code prior over a VQ-VAE's code grid: a normalised log p(z_q) (every grid enumerated), the chain
rule position by position, the VQ bound = log p(x | z_q) + log p(z_q), samples decoded, and bad --codes refused."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from clitools import expect_error
from safetensors.torch import load_file

import vaelab
from vaelab.config.schema import Config
from vaelab.estimators import evaluation
from vaelab.models import vqvae
from vaelab.models.code_prior import CodePixelCNN, CodePrior

K, GRID = 3, (2, 2)
VQ = dict(data="digits", model="vqvae", codebook_size=8, code_dim=4, batch_size=128, lr=3e-3, device="cpu")
PRIOR = dict(data="digits", model="code-prior", pixel_channels=8, pixel_layers=2, batch_size=128, lr=3e-3,
             device="cpu", eval_k=1)
QUIET = dict(log=lambda s: None, progress=False)


def _prior(seed: int = 0) -> CodePixelCNN:
    torch.manual_seed(seed)
    net = CodePixelCNN(K, GRID, channels=8, layers=2, kernel=3)
    with torch.no_grad():  # larger weights, so the conditionals are far from uniform
        for p in net.parameters():
            p.copy_(torch.randn(p.shape) * 0.7)
    return net


def _all_grids() -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(K), repeat=math.prod(GRID)))).reshape(-1, *GRID)  # (81, 2, 2)


def test_log_p_of_every_grid_sums_to_one():
    """Only a causal network gives a normalised product of conditionals: 3^4 grids enumerated."""
    with torch.no_grad():
        lp = _prior().log_prob(_all_grids())
    assert torch.logsumexp(lp.double(), 0).item() == pytest.approx(0.0, abs=1e-5)
    assert lp.std() > 0.5  # far from uniform, so the check has something to see


def test_log_p_is_the_chain_rule_computed_position_by_position():
    """log p(z) = sum_i log p(z_i | z_<i), each conditional read from a grid whose later positions are scrambled."""
    net, grids = _prior(), _all_grids()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        total = torch.zeros(len(grids), dtype=torch.float64)
        for i in range(math.prod(GRID)):
            r, c = divmod(i, GRID[1])
            seen = grids.clone().flatten(1)
            seen[:, i:] = torch.randint(0, K, seen[:, i:].shape, generator=g)  # z_i itself too: it must not count
            logits = net(seen.reshape(-1, *GRID))[:, :, r, c].double()  # (N, K)
            total += torch.log_softmax(logits, 1).gather(1, grids[:, r, c][:, None])[:, 0]
        assert torch.allclose(net.log_prob(grids).double(), total, atol=1e-5)


def test_samples_follow_the_prior():
    net = _prior()
    codes = net.sample(4000, torch.Generator().manual_seed(0))
    grids = _all_grids()
    with torch.no_grad():
        p = net.log_prob(grids).exp()
    index = (codes.flatten(1) * torch.tensor([27, 9, 3, 1])).sum(1)  # the grid's row in _all_grids
    freq = torch.bincount(index, minlength=len(grids)).double() / 4000
    assert (freq - p.double()).abs().max() < 0.03  # 4000 draws: a cell's standard error is below 0.008


def _model() -> CodePrior:
    torch.manual_seed(0)
    vq = vqvae.build(Config(model="vqvae", codebook_size=K, code_dim=2), (1, 8, 8))
    return CodePrior(vq, _prior()).eval()


def test_the_bound_is_reconstruction_plus_prior_computed_independently():
    model = _model()
    x = torch.rand(6, 64).round()
    with torch.no_grad():
        # independently: nearest codes from the encoder's output, the decoder's Bernoulli, the prior's log p
        z_e = model.vq.encoder(x.reshape(-1, 1, 8, 8)).permute(0, 2, 3, 1)  # (B, 2, 2, C)
        codes = torch.cdist(z_e.reshape(-1, 2), model.vq.quantizer.codebook).argmin(1).reshape(-1, *GRID)
        z_q = model.vq.quantizer.codebook[codes].permute(0, 3, 1, 2)
        recon = torch.distributions.Bernoulli(logits=model.vq.decoder(z_q).flatten(1)).log_prob(x).sum(1)
        prior = model.code_prior.log_prob(codes)
        pb = evaluation.point_bounds(model, x, k=3)
    assert torch.allclose(torch.as_tensor(pb.elbo), (recon + prior).double(), atol=1e-4)
    assert torch.allclose(torch.as_tensor(pb.iwae), torch.as_tensor(pb.elbo), atol=1e-9)  # a point mass: any k
    assert torch.allclose(torch.as_tensor(pb.kl), -prior.double(), atol=1e-4)


def test_training_fits_only_the_prior_and_sampling_decodes_through_the_vq_decoder(tmp_path):
    vq = vaelab.train(out=tmp_path / "vq", epochs=1, finish=False, **QUIET, **VQ)
    run = vaelab.train(out=tmp_path / "prior", codes=str(vq), epochs=2, finish=False, **QUIET, **PRIOR)
    before, after = load_file(str(vq / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert all(torch.equal(before[k], after[f"vq.{k}"]) for k in before)  # the VQ-VAE, codebook included, frozen
    ev = vaelab.evaluate(run)
    assert ev["elbo"] == pytest.approx(ev["vq_recon"] + ev["vq_prior"], abs=1e-6)
    assert ev["nll"] == pytest.approx(-ev["elbo"]) and "VQ bound" in ev["estimators"]["elbo"]
    model = vaelab.load(run)
    z = model.sample_latent(5, torch.Generator().manual_seed(0))  # (5, h*w) code indices from the prior
    images = vaelab.sample(model, 5, seed=0)
    decoded = model.vq.decode_codes(z.long().reshape(5, *model.grid)).mean  # (5, 64)
    assert images.shape == (5, 1, 8, 8) and torch.equal(images.flatten(1), decoded)


def test_bad_codes_are_one_line_exit_2_nothing_written(tmp_path, capsys):
    vae = vaelab.train(out=tmp_path / "vae", data="digits", hidden=(16,), latent_dim=2, epochs=1, finish=False,
                       **QUIET)
    vq = vaelab.train(out=tmp_path / "vq", epochs=1, finish=False, **QUIET, **VQ)
    base = ["train", "--model", "code-prior", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert "vqvae run" in expect_error(base + ["--codes", str(vae)], capsys)
    assert "not a trained run" in expect_error(base + ["--codes", str(tmp_path / "missing")], capsys)
    assert "needs codes" in expect_error(base, capsys)
    assert "likelihood" in expect_error(base + ["--codes", str(vq), "--likelihood", "gaussian"], capsys)
    assert "code-prior" in expect_error(["train", "--codes", str(vq), "--epochs", "1", "--out", str(tmp_path / "run")],
                                        capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.precision(kind="auto")  # runs compared alike
def test_resume_one_plus_one_epochs_equals_two(tmp_path):
    vq = vaelab.train(out=tmp_path / "vq", epochs=1, finish=False, **QUIET, **VQ)
    whole = vaelab.train(out=tmp_path / "whole", codes=str(vq), epochs=2, finish=False, **QUIET, **PRIOR)
    part = vaelab.train(out=tmp_path / "part", codes=str(vq), epochs=1, finish=False, **QUIET, **PRIOR)
    vaelab.train(out=part, resume=True, epochs=2, finish=False, **QUIET)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(part / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
