"""The Python API as a new user meets it (issue 12 section 4): train finishes like the CLI, takes arrays,
overwrite= and resume=, model.reconstruct and model.sample, errors that name the keyword."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from paths import ROOT
from sklearn.datasets import load_digits
from torch.distributions import Independent, Normal

import vaelab
from vaelab.errors import ConfigError, VaelabError
from vaelab.runs.folder import RunFolder

TINY = dict(hidden=(16,), latent_dim=2, batch_size=64, device="cpu", log=lambda s: None)
SRC = ROOT / "src" / "vaelab"


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return (d.images / 16).astype(np.float32), d.target  # (1797, 8, 8) in [0, 1], (1797,)


def test_train_finishes_like_the_cli_unless_told_not_to(tmp_path):
    run = vaelab.train(out=tmp_path / "r", epochs=1, eval_k=10, **TINY)
    for kind in ("curves", "recon", "samples", "latent", "manifold", "interp"):  # every plot of an image run
        assert (run / "plots" / f"{kind}.png").is_file(), kind
    assert json.loads((run / "eval.json").read_text())["k"] == 10
    assert (run / "report.html").read_text().count("data:image/png;base64,") >= 6
    bare = vaelab.train(out=tmp_path / "bare", epochs=1, finish=False, **TINY)
    assert not (bare / "eval.json").exists() and not (bare / "report.html").exists()


def test_numpy_arrays_train_exactly_like_the_named_dataset(tmp_path, digits, monkeypatch):
    x, y = digits
    kw = dict(epochs=2, finish=False, **TINY)
    arrays = vaelab.train(data=x, labels=y, out=tmp_path / "arrays", **kw)
    named = vaelab.train(data="digits", out=tmp_path / "named", **kw)
    # the same values and the same fixed 20% test hold-out: the same training, number for number
    loss = [[r["train_loss"] for r in RunFolder(p).read_metrics()] for p in (arrays, named)]
    assert loss[0] == loss[1]
    kept = np.load(arrays / "data.npz")
    assert np.array_equal(kept["x"], x) and np.array_equal(kept["y"], y)
    monkeypatch.chdir(tmp_path)  # the run finds its arrays again from anywhere
    assert vaelab.evaluate(arrays, k=5)["n"] == round(0.2 * len(x))


def test_torch_tensors_flat_without_labels(tmp_path, digits):
    x, _ = digits
    run = vaelab.train(data=torch.from_numpy(x.reshape(len(x), 64)), out=tmp_path / "t", epochs=1, finish=False,
                       **TINY)
    assert np.array_equal(np.load(run / "data.npz")["x"], x.reshape(len(x), 64))
    assert "y" not in np.load(run / "data.npz")


@pytest.mark.parametrize("data, labels, words", [
    (np.ones(5, np.float32), None, "data must be images shaped (N, D), (N, H, W) or (N, 1, H, W)"),
    (np.full((4, 3, 3), 2.0), None, "data values must lie in [0, 1] (found 2 to 2)"),
    (np.full((4, 9), np.nan), None, "data holds NaN"),
    (np.ones((4, 9), np.int64), None, "data must hold floats in [0, 1] or uint8"),
    (np.ones((4, 9), np.float32), np.zeros(3, np.int64), "labels must be 4 integers"),
    ("digits", np.zeros(3, np.int64), "labels go with array data"),
])
def test_bad_arrays_are_refused_by_keyword_and_nothing_is_written(tmp_path, data, labels, words):
    with pytest.raises(ConfigError) as e:
        vaelab.train(data=data, labels=labels, out=tmp_path / "r", epochs=1, **TINY)
    assert words in str(e.value) and "--" not in str(e.value)
    assert not (tmp_path / "r").exists()


def test_overwrite_and_resume_keywords(tmp_path):
    run = vaelab.train(out=tmp_path / "r", epochs=1, finish=False, **TINY)
    with pytest.raises(VaelabError, match="resume=True continues it, overwrite=True replaces it"):
        vaelab.train(out=run, epochs=1, finish=False, **TINY)
    vaelab.train(out=run, overwrite=True, epochs=2, finish=False, **TINY)
    two = RunFolder(run).read_metrics()
    assert [r["epoch"] for r in two] == [1, 2]
    vaelab.train(resume=run, epochs=3, finish=False, log=lambda s: None)  # resume=RUN names the run
    three = RunFolder(run).read_metrics()
    assert three[:2] == two and three[2]["epoch"] == 3
    with pytest.raises(VaelabError, match="name two runs"):
        vaelab.train(resume=run, out=tmp_path / "other", epochs=4, finish=False)


def test_reconstruct_and_sample(tmp_path, digits):
    x, _ = digits
    trained = vaelab.load(vaelab.train(out=tmp_path / "r", epochs=8, finish=False, **TINY))
    untrained = vaelab.load(vaelab.train(out=tmp_path / "r0", epochs=0, finish=False, **TINY))
    test = x[:200]  # (N, 8, 8) NumPy in, (N, 8, 8) tensor out
    rec = trained.reconstruct(test)
    assert rec.shape == test.shape and not rec.requires_grad
    flat = torch.from_numpy(test.reshape(200, 64))
    assert torch.allclose(rec.reshape(200, 64), trained.decode(trained.encode(flat).mean).mean)
    err = [float(((m.reconstruct(test) - torch.from_numpy(test)) ** 2).sum((1, 2)).mean())
           for m in (trained, untrained)]
    assert err[0] < 0.7 * err[1]  # training taught it to reconstruct: squared error per image falls
    with pytest.raises(VaelabError, match="x has 10 values per example; this model reads 64"):
        trained.reconstruct(np.zeros((2, 10)))
    ae = vaelab.load(vaelab.train(out=tmp_path / "ae", model="ae", epochs=1, finish=False, **TINY))
    assert ae.reconstruct(test[:5]).shape == (5, 8, 8)
    # sample(n) draws z from the model's own prior: move that prior to z = 5 and the samples follow it
    trained.prior = lambda: Independent(Normal(torch.full((2,), 5.0), torch.full((2,), 1e-6)), 1)
    s = trained.sample(4)
    at_five = trained.decode(torch.full((1, 2), 5.0)).mean.detach()
    assert s.shape == (4, 64) and torch.allclose(s, at_five.expand(4, 64), atol=1e-4)
    with pytest.raises(VaelabError, match="n must be at least 1"):
        trained.sample(0)


def test_library_errors_name_the_keyword(tmp_path):
    for call, words in ((lambda: vaelab.train(epochs=-1, out=tmp_path / "a"), "epochs must be >= 0"),
                        (lambda: vaelab.sweep(seeds=0, out=tmp_path / "b"), "seeds must be at least 1"),
                        (lambda: vaelab.train(data="corpus:x", out=tmp_path / "c"), "model nvdm")):
        with pytest.raises(VaelabError) as e:
            call()
        assert words in str(e.value) and "--" not in str(e.value), str(e.value)


def _messages(path: Path):
    """The string pieces of every `raise SomethingError(...)` in a module."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            if name.endswith("Error"):
                yield node.lineno, " ".join(c.value for c in ast.walk(node.exc)
                                            if isinstance(c, ast.Constant) and isinstance(c.value, str))


def test_no_library_error_names_a_command_line_flag():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.parent.name == "cli":  # the command line may name its own flags
            continue
        for line, text in _messages(path):
            # where to put data files names data_dir and its flag together; `--set` is parsed for the CLI alone
            if re.search(r"--[a-z]", text) and "data_dir" not in text and "--set" not in text:
                found.append(f"{path.relative_to(SRC)}:{line}: {text}")
    assert found == []
