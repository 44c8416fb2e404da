"""Tiny datasets: one training and one test example train, evaluate and report; empty ones fail first (item 3)."""

import json

import numpy as np
import pytest
from clitools import expect_error

from vaelab.cli.main import run as cli


def _npz(tmp_path, n_train, n_test, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (n_train, dim), dtype=np.uint8),
             x_test=rng.integers(0, 256, (n_test, dim), dtype=np.uint8))
    return path


@pytest.mark.parametrize("n_train,n_test,latent", [(1, 1, 3), (2, 2, 3), (3, 3, 2), (20, 11, 5)])
def test_tiny_datasets_train_evaluate_and_report(tmp_path, capsys, n_train, n_test, latent):
    path = _npz(tmp_path, n_train, n_test)
    run = tmp_path / "run"
    code = cli(["train", "--data", f"npz:{path}", "--epochs", "1", "--hidden", "8", "--latent-dim",
                str(latent), "--eval-k", "4", "--out", str(run)])
    out, err = capsys.readouterr()
    out = err  # the notes are logged, on stderr (hidden by -q)
    assert code == 0, err
    assert json.loads((run / "eval.json").read_text())["n"] == n_test
    assert (run / "report.html").is_file()
    drawn = {p.stem for p in (run / "plots").glob("*.png")}
    assert {"curves", "recon", "samples", "latent"} <= drawn, out
    for kind in ("interp", "manifold"):  # a PCA plane or a pair needs two test points
        if n_test >= 2 or (kind == "manifold" and latent == 2):
            assert kind in drawn
        else:
            assert f"skipped {kind}" in out
    if n_test < 12:
        assert "interp" not in drawn or "fewer" in out  # the plot says it drew fewer rows


@pytest.mark.parametrize("x_train,x_test", [
    (np.zeros((5, 0), np.uint8), np.zeros((2, 0), np.uint8)),  # (N, 0): no values per example
    (np.zeros((5, 3, 0), np.uint8), np.zeros((2, 3, 0), np.uint8)),
    (np.zeros((5, 4), np.uint8), np.zeros((0, 4), np.uint8)),  # no test rows
    (np.zeros((0, 4), np.uint8), np.zeros((2, 4), np.uint8)),  # no training rows
])
def test_empty_examples_or_splits_fail_before_anything_is_written(tmp_path, capsys, x_train, x_test):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=x_train, x_test=x_test)
    run = tmp_path / "run"
    expect_error(["-q", "train", "--data", f"npz:{path}", "--epochs", "1", "--out", str(run)], capsys)
    assert not run.exists()


def test_evaluating_an_empty_split_is_one_error(tmp_path, capsys):
    path = _npz(tmp_path, 6, 2)
    run = tmp_path / "run"
    assert cli(["-q", "train", "--data", f"npz:{path}", "--epochs", "1", "--hidden", "8", "--latent-dim", "2",
                "--val-fraction", "0", "--out", str(run), "--no-report"]) == 0
    capsys.readouterr()
    expect_error(["-q", "evaluate", str(run), "--split", "val", "--k", "2"], capsys)
    assert not (run / "eval.json").exists()
