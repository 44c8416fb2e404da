"""Typed config validation: wrong types and ranges are one error line, nothing written (issue 11, items 5, 6)."""

import tomllib

import pytest
from clitools import expect_error

from vaelab.cli.main import run as cli
from vaelab.config import schema as cfg
from vaelab.errors import ConfigError
from vaelab.runs.folder import RunFolder


@pytest.mark.parametrize("flags", [
    ["--seed", "-1"], ["--seed", str(2**32)], ["--set", "eval_batch=-5"], ["--image-size", "1000000"],
    ["--set", "lr=nan"], ["--set", "lr=inf"], ["--set", "data={a=1}"], ["--set", "binarize=3"],
    ["--model", "nvdm", "--likelihood", "bernoulli"],  # the model's multinomial would silently win
    ["--model", "ae", "--estimator", "iwae"],
])
def test_bad_flags_are_one_error_and_write_nothing(tmp_path, capsys, flags):
    out = tmp_path / "run"
    expect_error(["-q", "train", "--epochs", "1", "--out", str(out), *flags], capsys)
    assert not out.exists()


@pytest.mark.parametrize("text", [
    "data = 5", "model = {a=1}", "out = 5", "epochs = true", "hidden = [1.5]", "data_dir = 5", "hidden = 7",
    "seed = true", "lr = true", "likelihood = [1]", "binarize = 1", "seed = -1", "seed = 4294967296",
    "eval_batch = -5", 'data = ""',
])
def test_bad_toml_values_are_one_error(tmp_path, capsys, text):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    out = tmp_path / "run"
    err = expect_error(["-q", "train", "--config", str(path), "--out", str(out)], capsys)
    assert text.split(" =")[0] in err
    assert not out.exists()


def test_booleans_and_integers_stay_apart():
    """Only what the user wrote is accepted: 3 is an integer, 2.0 is the integer 2, true is no integer."""
    assert cfg.from_dict({"epochs": 3, "hidden": [4, 2.0], "binarize": "false"}).to_dict() | {} == \
        cfg.Config(epochs=3, hidden=(4, 2), binarize=False).to_dict()
    for key, value in (("epochs", True), ("hidden", [1.5]), ("hidden", [True]), ("binarize", 1),
                       ("data_dir", 5), ("val_fraction", False), ("k", "2x")):
        with pytest.raises(ConfigError, match=key):
            cfg.from_dict({key: value})


def test_a_likelihood_the_model_would_use_anyway_is_fine():
    from vaelab.api import make_config
    assert make_config(model="nvdm", likelihood="multinomial").likelihood == "multinomial"
    assert make_config(model="nvdm").model == "nvdm"  # the default likelihood is not the user's choice


ODD_TEXT = "a\nb\x01c\x7fd\"e\\f\tg\u2028h'i ]j"  # every character a TOML basic string must escape, and some it may not


def test_config_toml_holds_any_text_and_reads_it_back():
    c = cfg.Config(out=ODD_TEXT, data=f"npz:{ODD_TEXT}.npz", data_dir=ODD_TEXT)
    assert cfg.from_dict(tomllib.loads(cfg.to_toml(c))) == c


def test_a_run_folder_named_with_a_newline_and_a_control_character_trains_evaluates_and_resumes(tmp_path, capsys):
    out = tmp_path / "base\nrun\x01"
    tiny = ["--hidden", "8", "--latent-dim", "2", "--batch-size", "256", "--no-report"]
    assert cli(["-q", "train", "--epochs", "1", "--out", str(out), *tiny]) == 0
    assert tomllib.loads((out / "config.toml").read_text())["out"] == str(out)
    assert cli(["-q", "evaluate", str(out), "--k", "2"]) == 0
    assert cli(["-q", "train", "--resume", str(out), "--epochs", "2", "--no-report"]) == 0
    assert [r["epoch"] for r in RunFolder(out).read_metrics()] == [1, 2]


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_name_config_toml_cannot_hold_is_one_error_before_any_write(tmp_path, capsys, command):
    out = tmp_path / "bytes\udcff"  # the name `--out $'bytes\xff'` reaches Python as: \xff is not UTF-8
    seeds = ["--seeds", "2"] if command == "sweep" else []
    err = expect_error(["-q", command, "--epochs", "1", "--hidden", "8", *seeds, "--out", str(out)], capsys)
    assert "out must be UTF-8 text" in err
    assert list(tmp_path.iterdir()) == []
