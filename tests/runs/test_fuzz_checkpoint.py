"""Fuzzing damaged checkpoints and metrics.jsonl lines (issue 11).

A checkpoint with a tensor replaced, dropped or added, a metadata value changed, or bytes flipped or
cut, loads correctly or fails with one CheckpointError line; torch, NumPy and Python RNGs and the
model stay as they were when it fails.
"""

import json
import random

import numpy as np
import pytest
import torch
from fuzzing import outcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vaelab.reports.sections import training_section
from vaelab.runs.checkpoint import load_checkpoint, save_checkpoint
from vaelab.runs.folder import RunFolder
from vaelab.training.loop import make_optimizer

DTYPES = [torch.float32, torch.float64, torch.int64, torch.uint8, torch.float16, torch.bool]
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6)


def fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = make_optimizer(model, 1e-2, 0.1)  # two parameter groups
    model(torch.ones(5, 3)).pow(2).sum().backward()
    opt.step()
    return model, opt


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "checkpoint.safetensors"
    model, opt = _setup()
    save_checkpoint(path, model, opt, {"epoch": 3, "step": 12, "best_val": -1.5, "bad_epochs": 1,
                                       "stopped_early": False})
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    return path, st_load(path.read_bytes()), meta


def _mutate_json(value, path, new):
    """value with the entry at path (a list of keys/indices, followed while they exist) replaced by new."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return new
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    k = keys[path[0] % len(keys)]
    out = dict(value) if isinstance(value, dict) else list(value)
    out[k] = _mutate_json(value[k], path[1:], new)
    return out


@fuzz(1500)
@given(data=st.data())
def test_damaged_checkpoints(good, tmp_path_factory, data):
    path, tensors, meta = good
    tensors, meta = dict(tensors), dict(meta)
    how = data.draw(st.sampled_from(["tensor", "drop", "add", "meta", "bytes", "cut"]))
    names = sorted(tensors)
    if how == "tensor":
        shape = data.draw(st.lists(st.integers(0, 5), max_size=3))
        tensors[data.draw(st.sampled_from(names))] = torch.zeros(shape, dtype=data.draw(st.sampled_from(DTYPES)))
    elif how == "drop":
        del tensors[data.draw(st.sampled_from(names))]
    elif how == "add":
        tensors[data.draw(st.sampled_from(["optim.7.exp_avg", "optim.0.foo", "rng.cuda.0", "rng.x", "model.z",
                                           "x", "optim.0"]))] = torch.zeros(2)
    elif how == "meta":
        key = data.draw(st.sampled_from(sorted(meta)))
        value = _mutate_json(json.loads(meta[key]), data.draw(st.lists(st.integers(0, 700), max_size=3)),
                             data.draw(json_values))
        meta[key] = json.dumps(value) if data.draw(st.booleans()) else data.draw(st.text(max_size=8))
    blob = st_save(tensors, metadata=meta)
    if how == "bytes":
        blob = bytearray(blob)
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    elif how == "cut":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    damaged = tmp_path_factory.getbasetemp() / "damaged.safetensors"
    damaged.write_bytes(blob)

    model, opt = _setup()
    weights = [p.detach().clone() for p in model.parameters()]
    rngs = torch.get_rng_state(), np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        state = outcome(load_checkpoint, damaged, model, opt)
        if state is None:  # nothing was loaded
            assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
            assert torch.equal(torch.get_rng_state(), rngs[0])
            assert random.getstate() == rngs[2]
        else:
            assert isinstance(state["epoch"], int) and state["epoch"] >= 0
            model(torch.ones(2, 3)).sum().backward()
            opt.step()  # the restored Adam state takes a step (a wrong-shaped moment would not survive this)
    np.random.set_state(rngs[1])
    random.setstate(rngs[2])


@fuzz(1500)
@given(lines=st.lists(st.one_of(json_values.map(json.dumps), st.text(max_size=20),
                                st.fixed_dictionaries({"epoch": json_values, "train_loss": json_values})
                                .map(json.dumps)), max_size=5))
def test_damaged_metrics_lines(tmp_path_factory, lines):
    folder = RunFolder(tmp_path_factory.getbasetemp())
    (folder.path / "metrics.jsonl").write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    rows = outcome(folder.read_metrics)
    assert all(isinstance(r, dict) and type(r["epoch"]) is int for r in rows)
    if rows:
        training_section(rows)  # the report's table of them
