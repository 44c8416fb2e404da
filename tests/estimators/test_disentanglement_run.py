"""`vaelab evaluate RUN --disentanglement` on a shapes run, its file, compare's columns, and the refusals."""

import json

import pytest
from clitools import expect_error

import vaelab
from vaelab.cli.main import run as cli
from vaelab.estimators import disentanglement as dis

TINY = dict(hidden=(32,), latent_dim=4, batch_size=256, epochs=1, device="cpu", eval_k=5, finish=False,
            log=lambda s: None)


def test_evaluate_disentanglement_writes_its_own_file_and_compare_shows_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dis, "DCI_POINTS", 300)  # a quicker fit; the metrics are checked in test_disentanglement
    run = vaelab.train(out=tmp_path / "r", data="shapes", **TINY)
    assert cli(["evaluate", str(run), "--disentanglement"]) == 0
    out = capsys.readouterr().out
    path = run / "evals" / "test-factors.json"
    r = json.loads(path.read_text())
    assert f"wrote {path}" in out and not (run / "eval.json").exists()  # the bounds' eval.json is not touched
    assert r["factor_names"] == ["shape", "scale", "rotation", "x", "y"] and r["n"] == 1229
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap", "factorvae_score"):
        assert 0.0 <= r[key] <= 1.0 and key in r["estimators"] and f"{r[key]:8.4f}" in out
    assert "GradientBoostingClassifier" in r["estimators"]["dci_disentanglement"]
    assert cli(["evaluate", str(run), "--k", "5"]) == 0
    assert json.loads((run / "eval.json").read_text())["k"] == 5  # test-factors.json never competes for eval.json
    capsys.readouterr()
    assert cli(["compare", str(run), "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| MIG | DCI disentanglement | SAP | FactorVAE score |" in table and f"{r['mig']:.3f}" in table


def test_disentanglement_on_data_without_factors_is_one_error_and_writes_nothing(tmp_path, capsys):
    run = vaelab.train(out=tmp_path / "d", data="digits", **TINY)
    before = sorted(p.name for p in run.rglob("*"))
    err = expect_error(["evaluate", str(run), "--disentanglement"], capsys)
    assert "ground-truth factors" in err and "'digits'" in err
    assert sorted(p.name for p in run.rglob("*")) == before


@pytest.mark.parametrize("beta", ["-1", "-0.5"])
def test_negative_beta_is_one_error_and_writes_nothing(tmp_path, capsys, beta):
    err = expect_error(["train", "--beta", beta, "--epochs", "1", "--out", str(tmp_path / "b")], capsys)
    assert "beta must be >= 0" in err and not (tmp_path / "b").exists()
