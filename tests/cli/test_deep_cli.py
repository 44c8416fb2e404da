"""The deep models from the command line: bad settings refused, every estimator trains them, configs round-trip."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from clitools import expect_error

from vaelab import api
from vaelab.cli.main import run as cli
from vaelab.config.schema import from_dict
from vaelab.estimators import amortization_gap
from vaelab.runs import loading
from vaelab.runs.folder import RunFolder

TINY = dict(data="digits", hidden=(32,), batch_size=128, lr=3e-3, eval_k=20)
NEW = {
    "hvae": dict(model="hvae", latent_dim=(8, 4)),
    "vamp": dict(prior="vamp", pseudo_inputs=10, latent_dim=6),
    "hvae-vamp": dict(model="hvae", latent_dim=(8, 4), prior="vamp", pseudo_inputs=10),
    "iaf": dict(flow="iaf", flow_steps=2, latent_dim=6),
    "planar": dict(flow="planar", flow_steps=2, latent_dim=6),
    "conv-hvae": dict(model="conv-hvae", latent_dim=(8, 4)),  # digits are 8x8: sides divide by 4
}


@pytest.mark.parametrize("args", [
    ["--prior", "vamp", "--pseudo-inputs", "0"],
    ["--flow", "iaf", "--flow-steps", "-1"],
    ["--model", "hvae", "--latent-dim", "40,abc"],
    ["--model", "hvae", "--latent-dim", "20"],  # one layer is not a hierarchy
    ["--latent-dim", "40,20"],  # several layers for a one-layer model
    ["--model", "hvae", "--latent-dim", "4,2", "--flow", "iaf"],
    ["--model", "hvae", "--latent-dim", "4,2", "--posterior", "laplace"],
    ["--set", "lr_decay=0"],
])
def test_bad_deep_settings_are_one_line_exit_2_nothing_written(args, tmp_path, capsys):
    expect_error(["train", *args, "--epochs", "1", "--out", str(tmp_path / "run")], capsys)
    assert not (tmp_path / "run").exists()


def test_conv_hvae_refuses_images_whose_sides_do_not_divide_by_4(tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, (40, 30, 30)).astype(np.uint8)
    np.savez(tmp_path / "x.npz", x_train=x[:30], x_test=x[30:])
    err = expect_error(["train", "--data", f"npz:{tmp_path / 'x.npz'}", "--model", "conv-hvae", "--latent-dim", "4,2",
                        "--epochs", "1", "--out", str(tmp_path / "run")], capsys)
    assert "divisible by 4" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("prior", ["--prior=vamp", "--flow=planar", "--model=hvae"])
def test_stacked_sweeps_refuse_the_deep_models_with_one_line(prior, tmp_path, capsys):
    extra = ["--latent-dim", "4,2"] if prior == "--model=hvae" else []
    expect_error(["sweep", "--seeds", "2", prior, *extra, "--epochs", "1", "--out", str(tmp_path / "sw")], capsys)
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("estimator", ["sgvb-a", "sgvb-b", "iwae"])
@pytest.mark.parametrize("name", list(NEW))
def test_every_estimator_trains_every_new_model(name, estimator, tmp_path):
    run = api.train(out=tmp_path / "run", epochs=3, estimator=estimator, k=2 if estimator == "iwae" else 1,
                    log=lambda s: None, **TINY, **NEW[name])
    rows = RunFolder(run).read_metrics()
    key = "val_iwae" if estimator == "iwae" else "val_elbo"
    assert len(rows) == 3 and rows[-1][key] > rows[0][key] + 0.5, [r[key] for r in rows]  # it learns


def test_hvae_config_round_trips_and_evaluate_reports_each_layer(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["-q", "train", "--model", "hvae", "--latent-dim", "8,4", "--hidden", "32", "--epochs", "1",
                "--eval-k", "20", "--no-report", "--out", str(out)]) == 0
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["latent_dim"] == [8, 4] and saved["model"] == "hvae"
    c = loading.load_config(out)
    assert c.latent_dim == (8, 4) and from_dict(saved) == c
    assert cli(["-q", "train", "--resume", str(out), "--epochs", "2", "--no-report"]) == 0
    capsys.readouterr()
    assert cli(["-q", "evaluate", str(out), "--k", "20"]) == 0
    text = capsys.readouterr().out
    assert "KL per layer" in text and "z1" in text
    ev = RunFolder(out).history.read_eval()
    assert set(ev["kl_layers"]) == {"z1", "z2"} and set(ev["active_units_layers"]) == {"z1", "z2"}
    assert abs(sum(ev["kl_layers"].values()) - ev["kl"]) < 0.5  # per-layer Monte Carlo KLs add up to the KL
    expect_error(["amortization-gap", str(out), "--points", "5"], capsys)  # it says it cannot, in one line


def test_amortization_gap_optimises_a_flow_posterior_per_point(tmp_path):
    run = api.train(out=tmp_path / "run", epochs=3, log=lambda s: None, **TINY, **NEW["iaf"])
    r = amortization_gap.run_gap(run, points=20, steps=60, k=200, log=lambda s: None)
    assert r["optimized_elbo"] > r["amortized_elbo"] + 0.05  # per-point base and context beat the encoder's
    assert "flow's context" in r["estimators"]["optimized_elbo"]
