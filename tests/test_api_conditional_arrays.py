"""Conditional training from arrays (Sohn et al. 2015's CVAE on data=(x, y), data=x with labels=y, Datasets of
pairs): the run keeps its labels in RUN/data.npz, trains and scores like the named dataset, and a fresh process
loads it and samples per class; labels that do not fit are one error, before anything is written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import vaelab
from vaelab.errors import VaelabError
from vaelab.runs.folder import RunFolder

TINY = dict(hidden=(16,), latent_dim=2, batch_size=64, device="cpu", log=lambda s: None)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return (d.images / 16).astype(np.float32), d.target  # (1797, 8, 8) in [0, 1], (1797,)


@pytest.mark.precision(kind="auto")  # two runs made alike under the default precision
def test_arrays_and_labels_train_a_conditional_model_like_the_named_dataset(tmp_path, digits):
    x, y = digits
    kw = dict(conditional=True, epochs=2, finish=False, **TINY)
    pair = vaelab.train(data=(x, y), out=tmp_path / "pair", **kw)
    named = vaelab.train(data="digits", out=tmp_path / "named", **kw)
    keyword = vaelab.train(data=torch.from_numpy(x), labels=torch.from_numpy(y), out=tmp_path / "kw", **kw)
    # the same values, labels and hold-out: the same training, number for number (labels reach the model)
    loss = [[r["train_loss"] for r in RunFolder(p).read_metrics()] for p in (pair, named, keyword)]
    assert loss[0] == loss[1] == loss[2]
    kept = np.load(pair / "data.npz")
    assert np.array_equal(kept["x"], x) and np.array_equal(kept["y"], y)
    assert "classes = 10" in (pair / "config.toml").read_text()
    ev = vaelab.evaluate(pair, k=5, precision="fp32")
    assert ev["n"] == 359 and ev["conditional"]["classes"] == 10 and "log p(x | y)" in ev["estimators"]["iwae"]
    assert ev["iwae"] == vaelab.evaluate(named, k=5, precision="fp32")["iwae"]
    # a fresh process: the run stands alone, its model samples the class it is given
    script = (f"import vaelab, torch\nm = vaelab.load({str(pair)!r})\n"
              "g = torch.Generator().manual_seed(0)\n"
              "a = m.sample(4, g, y=torch.tensor([3, 3, 3, 3]))\n"
              "g = torch.Generator().manual_seed(0)\n"
              "b = m.sample(4, g, y=torch.tensor([7, 7, 7, 7]))\n"
              "print(m.classes, tuple(a.shape), float((a - b).abs().max()))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(vaelab.__file__).parents[1]))  # this checkout, installed or not
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    assert out[0] == "10" and out[1:3] == ["(4,", "64)"] and float(out[3]) > 1e-3  # the class changes the picture


def test_a_dataset_of_pairs_trains_conditionally(tmp_path, digits):
    x, y = digits
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x[:400]), torch.from_numpy(y[:400]))
    run = vaelab.train(data=ds, conditional=True, epochs=1, eval_k=3, explorer=False, out=tmp_path / "r", **TINY)
    assert json.loads((run / "eval.json").read_text())["conditional"]["classes"] == 10


@pytest.mark.parametrize("data, labels, extra, words", [
    ("PAIR_SHORT", None, {}, "labels must be 1797 integers"),
    ("X", "SHORT", {}, "labels must be 1797 integers"),
    ("X", None, {}, "has no labels"),
    ("PAIR", None, {"classes": 5}, "a one-hot label of width 5 (classes = 5) cannot hold"),
    ("PAIR", "Y", {}, "labels are given twice"),
])
def test_labels_that_do_not_fit_are_one_error_and_nothing_is_written(tmp_path, digits, data, labels, extra, words):
    x, y = digits
    data = {"PAIR_SHORT": (x, y[:-1]), "X": x, "PAIR": (x, y)}[data]
    labels = {"SHORT": y[:-1], "Y": y, None: None}[labels]
    with pytest.raises(VaelabError) as e:
        vaelab.train(data=data, labels=labels, conditional=True, out=tmp_path / "r", epochs=1, **extra, **TINY)
    assert words in str(e.value) and "--" not in str(e.value)
    assert not (tmp_path / "r").exists()
