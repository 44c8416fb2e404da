"""Typed config validation: wrong types and ranges are one error line, nothing written (issue 11, items 5, 6)."""

import pytest
from clitools import expect_error

from vaelab.config import schema as cfg
from vaelab.errors import ConfigError


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
