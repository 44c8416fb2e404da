"""Numeric flags are checked as they are parsed; the library checks its keywords too (issue 27, item 14).

The issue's cases: `evaluate RUN --k -5` was a 25-line traceback, `--batch -1` another, and `--k 0` /
`--batch 0` silently scored with the defaults. test_fuzz_cli.py runs every numeric flag of every command.
"""

import argparse
import json
import math
import re

import pytest
from fuzzing import listing

import vaelab
from vaelab.cli.main import run as cli
from vaelab.cli.numbers import COUNT, SEED, Number
from vaelab.distributions.corruption import Noise
from vaelab.errors import ConfigError, VaelabError


def exit_code(argv):
    """cli(argv)'s exit code, also when argparse exits with its usage error."""
    try:
        return cli(argv)
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("flags") / "run"
    assert cli(["-q", "train", "--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--out", str(run),
                "--no-report"]) == 0
    return run


@pytest.mark.parametrize("args", [["--k", "-5"], ["--batch", "-1"], ["--k", "0"], ["--batch", "0"], ["--k", "1e9"],
                                  ["--k", "nan"], ["--points", "0"], ["--noise-level", "nan"], ["--noise-mean", "inf"],
                                  ["--k", "99999999999999999999"]])
def test_evaluate_refuses_bad_numbers_naming_the_flag(trained, capsys, args):
    before = listing(trained)
    code = exit_code(["-q", "evaluate", str(trained), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and f"argument {args[0]}:" in err.splitlines()[0], err
    assert listing(trained) == before  # no eval.json written with the defaults


def test_the_smallest_valid_values_are_used_as_given(trained, capsys):
    assert cli(["-q", "evaluate", str(trained), "--k", "1", "--batch", "1", "--points", "3"]) == 0
    capsys.readouterr()
    r = json.loads((trained / "evals" / "test-k1-first3.json").read_text())
    assert r["k"] == 1 and r["n"] == 3


@pytest.mark.parametrize("kw", [{"k": -5}, {"k": 0}, {"batch": -1}, {"batch": 0}, {"k": 2.5}, {"k": True}])
def test_the_library_names_its_keywords(trained, kw):
    with pytest.raises(VaelabError, match=rf"^{next(iter(kw))} must be an integer >= 1"):
        vaelab.evaluate(trained, write=False, **kw)


@pytest.mark.parametrize("level, mean", [(math.nan, 0.0), (0.1, math.inf), (-0.1, 0.0)])
def test_a_corruption_must_be_finite(level, mean):
    with pytest.raises(ConfigError):
        Noise("gaussian", level, mean)


@pytest.mark.parametrize("number, text, value", [
    (COUNT, "7", 7), (COUNT, "0", None), (COUNT, "-1", None), (COUNT, "1e9", None), (COUNT, "2.0", None),
    (COUNT, "1_000", None), (COUNT, str(2**63), None), (COUNT, str(2**63 - 1), 2**63 - 1),
    (SEED, "4294967295", 2**32 - 1), (SEED, "4294967296", None),
    (Number(float, 0, low_open=True), "1e-3", 1e-3), (Number(float, 0, low_open=True), "0", None),
    (Number(float), "-inf", None), (Number(float), "nan", None), (Number(float), "1e300", 1e300),
    (Number(float, count=4), "-10,5,-5,5", (-10.0, 5.0, -5.0, 5.0)), (Number(float, count=4), "1,2,3", None),
    (Number(float, count=4), "1,2,3,nan", None),
])
def test_number_parses_only_its_range(number, text, value):
    if value is None:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"must be {number.describe()}, got")):
            number(text)
    else:
        assert number(text) == value


def test_plot_range_is_checked_as_four_finite_numbers(trained, capsys):
    assert exit_code(["-q", "plot", str(trained), "--kind", "manifold", "--range", "0,1,nan,1"]) == 2
    assert "argument --range: must be 4 comma-separated finite numbers" in capsys.readouterr().err
    assert cli(["-q", "plot", str(trained), "--kind", "manifold", "--range", "-3,3,-3,3"]) == 0
