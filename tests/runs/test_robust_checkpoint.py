"""Damaged checkpoints: every tensor and JSON value is checked before torch or NumPy sees it (issue 11, item 1)."""

import json
import math

import pytest
import torch
from clitools import expect_error
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vaelab.errors import CheckpointError
from vaelab.runs.checkpoint import load_checkpoint, save_checkpoint
from vaelab.training.loop import make_optimizer


def _setup(weight_decay=0.0):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = make_optimizer(model, 1e-2, weight_decay)
    model(torch.ones(5, 3)).pow(2).sum().backward()
    opt.step()
    return model, opt


@pytest.fixture
def saved(tmp_path):
    model, opt = _setup()
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, opt, {"epoch": 2, "step": 7, "best_val": -math.inf, "bad_epochs": 0,
                                       "stopped_early": False})
    return path


def _rewrite(path, tensors=None, meta=None):
    """Change some tensors (None deletes) and metadata entries (None deletes) of a checkpoint in place."""
    t = st_load(path.read_bytes())
    with safe_open(str(path), framework="pt") as f:
        m = f.metadata()
    for d, changes in ((t, tensors or {}), (m, meta or {})):
        for k, v in changes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
    path.write_bytes(st_save(t, metadata=m))


def _load(path):
    model, opt = _setup()
    return load_checkpoint(path, model, opt)


def test_intact_checkpoint_restores_the_adam_moments(saved):
    model, opt = _setup()
    want = {k: v.clone() for k, v in opt.state_dict()["state"][0].items()}
    model2, opt2 = _setup()
    opt2.state.clear()
    assert load_checkpoint(saved, model2, opt2)["step"] == 7
    for k, v in opt2.state_dict()["state"][0].items():
        assert torch.equal(v.cpu(), want[k]), k


@pytest.mark.parametrize("name,bad", [
    ("optim.0.exp_avg", torch.zeros(3, 3)),  # the fused step would write past this buffer
    ("optim.1.exp_avg_sq", torch.zeros(4, dtype=torch.float64)),
    ("optim.0.step", torch.zeros(2)),
    ("optim.9.exp_avg", torch.zeros(4, 3)),
    ("optim.0.exp_avg", None),
    ("rng.torch", torch.zeros(10, dtype=torch.uint8)),
    ("rng.numpy", torch.zeros(600, dtype=torch.int64)),
    ("model.0.weight", torch.zeros(4, 3, dtype=torch.float64)),
    ("junk", torch.zeros(1)),
])
def test_a_wrong_tensor_is_one_error_naming_it(saved, name, bad):
    _rewrite(saved, tensors={name: bad})
    with pytest.raises(CheckpointError) as e:
        _load(saved)
    msg = str(e.value)
    assert str(saved) in msg and "\n" not in msg
    assert name.removeprefix("model.").rsplit(".", 1)[0] in msg or "lacks exp_avg" in msg


@pytest.mark.parametrize("key,value", [
    ("state", json.dumps({"epoch": "1", "step": 7, "best_val": 0.0, "bad_epochs": 0, "stopped_early": False})),
    ("state", json.dumps({"epoch": 1, "best_val": 0.0, "bad_epochs": 0, "stopped_early": False})),
    ("state", json.dumps({"epoch": 1, "step": -3, "best_val": 0.0, "bad_epochs": 0, "stopped_early": False})),
    ("state", json.dumps({"epoch": 1, "step": 3, "best_val": 0.0, "bad_epochs": 0, "stopped_early": 1})),
    ("state", json.dumps({"epoch": 1, "step": 3, "best_val": "x", "bad_epochs": 0, "stopped_early": True})),
    ("state", "[]"),
    ("rng", json.dumps({"numpy": ["MT19937", 624, 0, 0.0], "python": [3, [1, 2, 3], None]})),
    ("rng", json.dumps({"numpy": ["MT19937", 9999, 0, 0.0], "python": [3, [0] * 624 + [624], None]})),
    ("param_groups", "[{}]"),
    ("param_groups", "5"),
    ("optim_scalars", json.dumps({"0": {"lr": "x"}})),
    ("rng", None),
    ("state", "{not json"),
])
def test_bad_metadata_is_one_error(saved, key, value):
    _rewrite(saved, meta={key: value})
    with pytest.raises(CheckpointError) as e:
        _load(saved)
    assert str(saved) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("flag", ["amsgrad", "maximize", "differentiable", "decoupled_weight_decay"])
def test_an_adam_flag_the_optimizer_does_not_have_is_one_error(saved, flag):
    """amsgrad on would step with a max_exp_avg_sq the file lacks (KeyError), differentiable fails the fused step,
    maximize would climb the loss without a word (found by test_fuzz_checkpoint)."""
    with safe_open(str(saved), framework="pt") as f:
        groups = json.loads(f.metadata()["param_groups"])
    groups[0][flag] = True
    _rewrite(saved, meta={"param_groups": json.dumps(groups)})
    with pytest.raises(CheckpointError) as e:
        _load(saved)
    assert f"param_groups[0].{flag} = True, the optimizer's is False" in str(e.value)


def test_nothing_is_loaded_when_a_late_entry_is_bad(saved):
    """The weights stay as they were: validation runs before any load."""
    _rewrite(saved, meta={"rng": json.dumps({"numpy": [], "python": []})})
    model, opt = _setup()
    before = [p.detach().clone() for p in model.parameters()]
    torch.nn.init.zeros_(model[0].weight)
    before[0] = model[0].weight.detach().clone()
    rng = torch.get_rng_state()
    with pytest.raises(CheckpointError):
        load_checkpoint(saved, model, opt)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert torch.equal(rng, torch.get_rng_state())


def test_resume_with_a_wrong_shaped_moment_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    from vaelab.cli.main import run as cli
    assert cli(["-q", "train", "--epochs", "2", "--hidden", "16", "--latent-dim", "2", "--out", str(run),
                "--no-report"]) == 0
    capsys.readouterr()
    ck = run / "checkpoint.safetensors"
    name = next(k for k in st_load(ck.read_bytes()) if k.endswith("exp_avg"))
    _rewrite(ck, tensors={name: torch.zeros(3, 3)})
    err = expect_error(["-q", "train", "--resume", str(run), "--epochs", "3"], capsys)
    assert name in err and "checkpoint.safetensors" in err


@pytest.mark.parametrize("shape", ['"x"', "[0, 8]", "[2147483648, 2]", "{bad", '[1.5]', "[]"])
def test_a_bad_recorded_data_shape_is_one_error(tmp_path, shape):
    from vaelab.runs.checkpoint import read_shape, save_weights

    path = tmp_path / "model.safetensors"
    save_weights(path, torch.nn.Linear(2, 2), {"shape": shape})
    with pytest.raises(CheckpointError, match="data shape"):
        read_shape(path)
    save_weights(path, torch.nn.Linear(2, 2), {"shape": "[1, 8, 8]"})
    assert read_shape(path) == (1, 8, 8)
