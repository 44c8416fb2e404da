"""`vaelab evaluate --points N` scores the split's first N points: the numbers are those points' own, the
evaluation is kept apart from whole-split ones, and eval.json prefers the whole split."""

import json

import numpy as np
import pytest
import torch
from clitools import refused_flag

import vaelab
from vaelab.cli.main import run as cli
from vaelab.estimators.evaluation import exact_log_prob
from vaelab.reports import compare
from vaelab.runs import inputs, loading

TINY = dict(pixel_channels=4, pixel_layers=2, pixel_kernel=3, hidden=(16,))


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory):
    """A PixelCNN on digits: its exact log p(x) per point gives an independent answer for any subset."""
    return vaelab.train(data="digits", model="pixelcnn", epochs=1, batch_size=64, device="cpu",
                        out=tmp_path_factory.mktemp("points") / "p", log=lambda s: None, finish=False, **TINY)


def _per_point(run) -> np.ndarray:
    """log p(x) of every test point under the split's seeded binarization, (N,)."""
    c, model = loading.load_model(run)
    x = inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))
    return exact_log_prob(model, x)


@pytest.mark.precision(kind="auto")  # auto trains; the independent answer is computed in fp32, as evaluation is
def test_a_subset_scores_exactly_its_first_points(pixel_run):
    logp = _per_point(pixel_run)
    whole = vaelab.evaluate(pixel_run)
    sub = vaelab.evaluate(pixel_run, points=37)
    assert sub["n"] == 37 and sub["split_points"] == len(logp) and "split_points" not in whole
    assert sub["nll"] == pytest.approx(-logp[:37].mean(), abs=1e-6)
    assert whole["nll"] == pytest.approx(-logp.mean(), abs=1e-6)
    # the subset differs from the whole split by more than the tolerance, so slicing is what the first check saw
    assert abs(-logp[:37].mean() - -logp.mean()) > 1e-3
    assert json.loads((pixel_run / "evals" / "test-first37.json").read_text())["nll"] == sub["nll"]
    shown = json.loads((pixel_run / "eval.json").read_text())
    assert shown["nll"] == whole["nll"] and "split_points" not in shown  # the whole split stays the headline


def test_eval_json_takes_a_subset_only_when_nothing_else_is_current(tmp_path):
    run = vaelab.train(data="digits", hidden=(16,), latent_dim=2, batch_size=64, epochs=1, device="cpu",
                       out=tmp_path / "v", log=lambda s: None, finish=False)
    sub = vaelab.evaluate(run, k=50, points=20)
    shown = json.loads((run / "eval.json").read_text())
    assert (shown["nll"], shown["n"], shown["split_points"]) == (sub["nll"], 20, sub["split_points"])
    assert "(first 20 of " in compare.run_row(run)["test_points"]  # compare says which points it ranked
    whole = vaelab.evaluate(run, k=5)  # a cheaper k, but every point
    assert json.loads((run / "eval.json").read_text())["nll"] == whole["nll"]
    assert {p.name for p in (run / "evals").glob("*.json")} == {"test-k50-first20.json", "test-k5.json"}


def test_the_command_line_names_the_subset(pixel_run, capsys):
    assert cli(["-q", "evaluate", str(pixel_run), "--points", "12"]) == 0
    out = capsys.readouterr().out
    assert "(test split, the first 12 of " in out and "wrote " + str(pixel_run / "evals" / "test-first12.json") in out


@pytest.mark.parametrize("points", ["0", "-3", "100000"])
def test_points_outside_the_split_are_one_error_line(pixel_run, capsys, points):
    before = sorted(p.name for p in (pixel_run / "evals").glob("*.json"))
    if int(points) < 1:  # refused as the flag is parsed (test_numeric_flags.py)
        assert "argument --points: must be an integer >= 1" in refused_flag(
            ["-q", "evaluate", str(pixel_run), "--points", points], capsys)
    else:
        assert cli(["-q", "evaluate", str(pixel_run), "--points", points]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"points {points}: the test split of digits has " in err[0]
    assert sorted(p.name for p in (pixel_run / "evals").glob("*.json")) == before  # nothing written


def test_a_corpus_subset_scores_its_first_documents(tmp_path):
    from corpora import two_topic_lines, write_tsv

    path = write_tsv(tmp_path / "two", two_topic_lines(80))
    run = vaelab.train(data=f"corpus:{path}", model="nvdm", hidden=(16,), latent_dim=2, batch_size=8, epochs=1,
                       device="cpu", out=tmp_path / "nvdm", log=lambda s: None, finish=False)
    c, _ = loading.load_model(run)
    counts = inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))  # (N, |V|) word counts
    sub = vaelab.evaluate(run, k=10, points=5)
    assert (sub["n"], sub["split_points"]) == (5, len(counts))
    assert sub["words"] == pytest.approx(float(counts[:5].sum()))  # the perplexity's words are those 5 documents'
    assert sub["words"] != pytest.approx(float(counts.sum()))
