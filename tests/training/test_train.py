"""Training: resume is bit-exact, metrics are logged, early stopping and the digits baseline."""

import json

import pytest
import torch
from bounds_by_hand import bounds, reconstruction
from safetensors.torch import load_file
from torch.distributions import kl_divergence

import vaelab
from vaelab.runs import inputs, loading

SMALL = dict(data="digits", hidden=(64,), latent_dim=4, batch_size=64, lr=1e-3, device="cpu", eval_k=50)


def _weights(run, name="checkpoint.safetensors"):
    return {k: v for k, v in load_file(str(run / name)).items() if k.startswith("model.")}


@pytest.mark.precision(kind="auto")  # exact values in whatever precision auto picks here (runs compared alike)
def test_resume_is_bit_exact(tmp_path):
    whole = vaelab.train(finish=False, out=tmp_path / "whole", epochs=6, log=lambda s: None, **SMALL)
    part = vaelab.train(finish=False, out=tmp_path / "part", epochs=3, log=lambda s: None, **SMALL)
    assert json.loads((part / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 3
    vaelab.train(finish=False, out=part, resume=True, epochs=6, log=lambda s: None)
    a, b = _weights(whole), _weights(part)
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the whole training state agrees too: Adam moments, step counts, every RNG
    a, b = load_file(str(whole / "checkpoint.safetensors")), load_file(str(part / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a) and "rng.torch" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows_a = [json.loads(s) for s in (whole / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(s) for s in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows_b] == [1, 2, 3, 4, 5, 6]
    assert [r["train_loss"] for r in rows_a] == [r["train_loss"] for r in rows_b]
    assert [r["val_elbo"] for r in rows_a] == [r["val_elbo"] for r in rows_b]


def test_metrics_lines_have_required_keys_and_loss_falls(tmp_path):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=5, log=lambda s: None, **SMALL)
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"epoch", "train_loss", "val_elbo", "train_seconds"} <= rows[0].keys()
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert rows[-1]["val_elbo"] > rows[0]["val_elbo"]
    assert all(r["train_seconds"] > 0 for r in rows)


def test_early_stopping_stops_and_keeps_best(tmp_path):
    # a large step makes the validation bound plateau and wobble within a few dozen epochs
    cfg = dict(SMALL, lr=3e-2, patience=3)
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=60, log=lambda s: None, **cfg)
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) < 60
    vals = [r["val_elbo"] for r in rows]
    best = max(vals)
    # it stopped exactly `patience` epochs after the best one
    assert len(vals) - 1 - vals.index(best) == 3
    # the kept weights are the best epoch's: re-scoring them reproduces the best validation ELBO
    from vaelab.training.loop import validation_score

    c = loading.load_config(run)
    data = inputs.load_data(c)
    _, model = loading.load_model(run)
    score = validation_score(model, inputs.eval_inputs(c, data, "val", torch.device("cpu")), "sgvb-b")
    assert score == pytest.approx(best, abs=1e-4)


def test_default_model_beats_independent_pixels_on_digits(tmp_path):
    # The acceptance check of the embedded default, as shipped: NLL-1000 of the VAE vs a per-pixel
    # Bernoulli fitted to the training set's mean intensities, on the same binarized test set.
    run = vaelab.train(finish=False, out=tmp_path / "r", log=lambda s: None, device="cpu")
    result = vaelab.evaluate(run, k=1000)
    c = loading.load_config(run)
    data = inputs.load_data(c)
    p = (data.train.float() * data.scale).mean(0).clamp(1e-3, 1 - 1e-3)
    x = inputs.eval_inputs(c, data, "test", torch.device("cpu"))
    indep = -float((x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean())
    assert result["nll"] < 0.88 * indep


def test_gaussian_likelihood_runs_report_the_bounds_of_their_weights(tmp_path):
    for lik in ("gaussian", "gaussian-learned"):
        run = vaelab.train(finish=False, out=tmp_path / lik, epochs=2, likelihood=lik, log=lambda s: None, **SMALL)
        r = vaelab.evaluate(run, k=20, precision="fp32")
        # the same bounds from independent draws (bounds_by_hand: no vaelab estimator), and the closed-form KL
        c, model = loading.load_model(run)
        x = inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))
        hand = bounds(model, x, 20)
        assert abs(r["elbo"] - float(hand.elbo.mean())) < hand.elbo_tol, lik
        assert abs(r["iwae"] - float(hand.iwae.mean())) < hand.iwae_tol, lik
        with torch.no_grad():
            kl = kl_divergence(model.encode(x), model.prior()).double().mean()
        assert r["kl"] == pytest.approx(float(kl), rel=1e-5), lik


def _initial(tmp_path, name: str, kw: dict):
    """The untrained model of a config: the weights a zero-epoch run keeps (the same seed as the trained run)."""
    return vaelab.load(vaelab.train(finish=False, out=tmp_path / f"{name}-init", epochs=0, log=lambda s: None, **kw))


def test_conv_vae_and_iwae_and_ae_learn_and_log_the_bound_of_their_weights(tmp_path):
    # the validation score logged for the kept (best) epoch is the bound of the kept weights on the validation
    # split, recomputed here from independent draws (an autoencoder's reconstruction score: exactly); and it
    # rose from the untrained weights' by more than 4 times its Monte-Carlo tolerance
    for name, extra, key in [("conv", dict(model="conv-vae", latent_dim=2), "val_elbo"),
                             ("iwae", dict(estimator="iwae", k=5), "val_iwae"),
                             ("sgvba", dict(estimator="sgvb-a"), "val_elbo"), ("ae", dict(model="ae"), "val_recon")]:
        kw = dict(SMALL, **extra)
        run = vaelab.train(finish=False, out=tmp_path / name, epochs=2, log=lambda s: None, **kw)
        best = max(r[key] for r in (json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()))
        c = loading.load_config(run)
        x = inputs.eval_inputs(c, inputs.load_data(c), "val", torch.device("cpu"))
        trained, initial = vaelab.load(run), _initial(tmp_path, name, kw)
        if key == "val_recon":
            now, then, tol = float(reconstruction(trained, x).mean()), float(reconstruction(initial, x).mean()), 1e-4
        else:
            k = kw.get("k", 1) if key == "val_iwae" else 1
            pick = (lambda h: h.iwae) if key == "val_iwae" else (lambda h: h.elbo)  # noqa: E731
            hand, start = bounds(trained, x, k), bounds(initial, x, k)
            now, then = float(pick(hand).mean()), float(pick(start).mean())
            tol = hand.iwae_tol if key == "val_iwae" else hand.elbo_tol
        assert abs(best - now) < tol, (name, best, now, tol)
        assert now - then > 4 * tol, (name, now, then, tol)


def test_sample_shape_and_range(tmp_path):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=1, log=lambda s: None, **SMALL)
    model = vaelab.load(run)
    a = vaelab.sample(model, 16, seed=3)
    b = vaelab.sample(model, 16, seed=3)
    assert a.shape == (16, 1, 8, 8) and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1


@pytest.mark.precision(kind="auto")  # exact values in whatever precision auto picks here (runs compared alike)
def test_evaluation_is_reproducible_and_uses_one_fixed_binarization(tmp_path):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=2, log=lambda s: None, **SMALL)
    a = vaelab.evaluate(run, k=30, write=False)
    b = vaelab.evaluate(run, k=30, write=False)
    assert a["elbo"] == b["elbo"] and a["nll"] == b["nll"]
    c = loading.load_config(run)
    data = inputs.load_data(c)
    x1 = inputs.eval_inputs(c, data, "test", torch.device("cpu"))
    x2 = inputs.eval_inputs(c, data, "test", torch.device("cpu"))
    assert torch.equal(x1, x2) and set(x1.unique().tolist()) == {0.0, 1.0}
    # the draw is a Bernoulli with the grey values as probabilities
    p = data.test.float() * data.scale
    assert abs(float(x1.mean()) - float(p.mean())) < 0.01


def test_grey_values_under_a_bernoulli_likelihood_warn(tmp_path):
    with pytest.warns(UserWarning, match="not a normalised likelihood"):
        vaelab.train(finish=False, out=tmp_path / "r", epochs=1, binarize=False, log=lambda s: None, **SMALL)


def test_bf16_evaluation_stays_close_to_fp32(tmp_path):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=3, log=lambda s: None, **SMALL)
    exact = vaelab.evaluate(run, k=50, write=False)
    low = vaelab.evaluate(run, k=50, write=False, precision="bf16")
    assert low["precision"] == "bf16" and exact["precision"] == "fp32"  # the default, whatever the training's
    assert abs(low["elbo"] - exact["elbo"]) < 0.01  # nats; the same samples, only the matmuls differ
    assert abs(low["nll"] - exact["nll"]) < 0.01
    with pytest.raises(vaelab.VaelabError, match="tf32"):
        vaelab.evaluate(run, k=5, write=False, precision="tf32")


def test_bf16_training_learns_like_fp32(tmp_path):
    rows = {}
    for p in ("fp32", "bf16"):
        run = vaelab.train(finish=False, out=tmp_path / p, epochs=4, precision=p, log=lambda s: None, **SMALL)
        rows[p] = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows["bf16"][-1]["val_elbo"] > rows["bf16"][0]["val_elbo"] + 1.0  # it learns
    assert abs(rows["bf16"][-1]["val_elbo"] - rows["fp32"][-1]["val_elbo"]) < 0.5  # and about as well
