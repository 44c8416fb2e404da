"""Weight averaging (ema): the saved weights are the closed-form average of the trained ones, training is untouched,
validation scores the average, and --resume stays bit-exact with it."""

import json

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from vaelab.config.schema import Config
from vaelab.errors import CheckpointError, ConfigError
from vaelab.runs import inputs, loading
from vaelab.runs.checkpoint import load_checkpoint
from vaelab.runs.folder import epoch_weights
from vaelab.training.loop import validation_score

# batch_size above digits' ~1,600 training images: one optimiser step per epoch, so epoch snapshots are steps
ONE_STEP = dict(data="digits", hidden=(32,), latent_dim=3, batch_size=4096, lr=3e-2, device="cpu", val_fraction=0.0,
                epochs=3, save_every=1)
SMALL = dict(data="digits", hidden=(64,), latent_dim=4, batch_size=64, lr=1e-3, device="cpu", log=lambda s: None)


def _prefixed(path, prefix):
    return {k.removeprefix(prefix): v for k, v in load_file(str(path)).items() if k.startswith(prefix)}


@pytest.mark.precision(kind="auto")  # exact values in whatever precision auto picks here (runs compared alike)
def test_saved_weights_are_the_closed_form_average_of_the_trained_steps(tmp_path):
    plain = vaelab.train(finish=False, out=tmp_path / "plain", log=lambda s: None, **ONE_STEP)
    steps = [load_file(str(plain / epoch_weights(e))) for e in (1, 2, 3)]
    averaged = vaelab.train(finish=False, out=tmp_path / "avg", ema=0.5, log=lambda s: None, **ONE_STEP)
    # a_1 = w_1, a_t = d a_{t-1} + (1 - d) w_t with d = 0.5:  a_3 = w_1 / 4 + w_2 / 4 + w_3 / 2
    saved = load_file(str(averaged / "model.safetensors"))
    assert saved.keys() == steps[0].keys()
    moved = 0
    for k, w3 in steps[2].items():
        expected = 0.25 * steps[0][k] + 0.25 * steps[1][k] + 0.5 * w3
        assert torch.allclose(saved[k], expected, atol=1e-6, rtol=1e-5), k
        moved += not torch.allclose(saved[k], w3, atol=1e-4)
    assert moved > 0  # the average is not the last step's weights
    # training is untouched: the trained weights in both checkpoints agree bit for bit
    a = _prefixed(plain / "checkpoint.safetensors", "model.")
    b = _prefixed(averaged / "checkpoint.safetensors", "model.")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ema = _prefixed(averaged / "checkpoint.safetensors", "ema.")
    assert int(ema["n_averaged"]) == 3 and not _prefixed(plain / "checkpoint.safetensors", "ema.")


def test_validation_scores_the_average_not_the_trained_weights(tmp_path):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=3, ema=0.9, save_every=1, **SMALL)
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    c = loading.load_config(run)
    val = inputs.eval_inputs(c, inputs.load_data(c), "val", torch.device("cpu"))
    _, model = loading.load_model(run)
    model.load_state_dict(load_file(str(run / epoch_weights(3))))
    assert validation_score(model, val, "sgvb-b") == pytest.approx(last["val_elbo"], abs=1e-4)
    model.load_state_dict(_prefixed(run / "checkpoint.safetensors", "model."))
    assert abs(validation_score(model, val, "sgvb-b") - last["val_elbo"]) > 1e-2  # the trained weights score apart


@pytest.mark.precision(kind="auto")  # exact values in whatever precision auto picks here (runs compared alike)
def test_resume_with_an_average_is_bit_exact(tmp_path):
    whole = vaelab.train(finish=False, out=tmp_path / "whole", epochs=4, ema=0.99, **SMALL)
    part = vaelab.train(finish=False, out=tmp_path / "part", epochs=2, ema=0.99, **SMALL)
    vaelab.train(finish=False, out=part, resume=True, epochs=4, log=lambda s: None)
    for name in ("checkpoint.safetensors", "model.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(part / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert any(k.startswith("ema.") for k in load_file(str(whole / "checkpoint.safetensors")))


def test_a_checkpoint_and_a_run_that_disagree_on_averaging_are_refused(tmp_path):
    plain = vaelab.train(finish=False, out=tmp_path / "plain", epochs=1, **SMALL)
    averaged = vaelab.train(finish=False, out=tmp_path / "avg", epochs=1, ema=0.9, **SMALL)
    _, model = loading.load_model(plain)
    optimizer = torch.optim.Adam(model.parameters())
    from vaelab.training.averaging import averaged as make_average

    with pytest.raises(CheckpointError, match="holds no weight average"):
        load_checkpoint(plain / "checkpoint.safetensors", model, optimizer, make_average(model, 0.9))
    with pytest.raises(CheckpointError, match="configured without one"):
        load_checkpoint(averaged / "checkpoint.safetensors", model, optimizer)


@pytest.mark.parametrize("decay", [1.0, -0.1])
def test_a_decay_outside_zero_to_one_is_a_config_error(decay):
    with pytest.raises(ConfigError, match=r"ema must be in \[0, 1\)"):
        Config(ema=decay)


def test_a_comparison_names_averaged_weights():
    from vaelab.reports.compare import describe

    assert "weights averaged (ema 0.998)" in describe(Config(ema=0.998))
    assert "averaged" not in describe(Config())
