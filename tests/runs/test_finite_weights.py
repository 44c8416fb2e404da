"""NaN or infinity in saved weights is one error naming the tensor; no JSON vaelab writes holds NaN
(issue 27, item 11)."""

import json
import math
import shutil

import pytest
from clitools import expect_error
from fuzzing import listing
from paths import ROOT
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vaelab.cli.main import run as cli
from vaelab.errors import VaelabError
from vaelab.runs.folder import RunFolder


def strict_loads(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity (which Python's parser accepts and JSON does not)."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("finite") / "run"
    assert cli(["-q", "train", "--epochs", "2", "--hidden", "16", "--latent-dim", "2", "--out", str(run),
                "--no-report"]) == 0
    return run


def _poison(path, name, value):
    """Set one entry of tensor `name` in a safetensors file to value, keeping the metadata."""
    tensors = st_load(path.read_bytes())
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[3] = value
    path.write_bytes(st_save(tensors, metadata=meta))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_evaluate_refuses_non_finite_weights_naming_the_tensor(trained, tmp_path, capsys, value):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    _poison(run / "model.safetensors", "decoder.0.weight", value)
    before = listing(run)
    err = expect_error(["-q", "evaluate", str(run), "--k", "5"], capsys)
    assert "decoder.0.weight" in err and "model.safetensors" in err and ("NaN" in err or "inf" in err)
    assert listing(run) == before  # no eval.json, no evals/


@pytest.mark.parametrize("name", ["model.encoder.0.weight", "optim.0.exp_avg_sq"])
def test_resume_refuses_a_non_finite_checkpoint_naming_the_tensor(trained, tmp_path, capsys, name):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ck = run / "checkpoint.safetensors"
    if name.startswith("optim."):  # the first parameter's moment, whatever its id in this model
        name = sorted(k for k in st_load(ck.read_bytes()) if k.endswith(".exp_avg_sq"))[0]
    _poison(ck, name, math.nan)
    err = expect_error(["-q", "train", "--resume", str(run), "--epochs", "3"], capsys)
    assert name.removeprefix("model.") in err and "checkpoint.safetensors" in err and "diverged" not in err


def test_json_writers_refuse_nan_and_write_nothing(tmp_path):
    folder = RunFolder(tmp_path)
    for write in (lambda: folder.write_json("x.json", {"a": [1.0, math.nan]}),
                  lambda: folder.write_metrics([{"epoch": 1, "train_loss": math.inf}])):
        with pytest.raises(VaelabError, match="not a finite number") as e:
            write()
        assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_every_json_of_a_finished_run_is_strict_json(tmp_path):
    run = tmp_path / "run"
    # zero epochs: the checkpoint's best validation score is still minus infinity
    assert cli(["-q", "train", "--epochs", "0", "--hidden", "16", "--latent-dim", "2", "--out", str(run),
                "--no-explorer"]) == 0
    files = [p for p in run.rglob("*") if p.suffix in (".json", ".jsonl")]
    assert {p.name for p in files} >= {"eval.json", "metrics.jsonl", "provenance.json"}
    for p in files:
        for line in p.read_text().splitlines() if p.suffix == ".jsonl" else [p.read_text()]:
            strict_loads(line)
    with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as f:
        for text in f.metadata().values():
            strict_loads(text)
    assert cli(["-q", "train", "--resume", str(run), "--epochs", "1", "--no-report"]) == 0  # and it still resumes


def test_a_checkpoint_written_before_strict_json_still_resumes(trained, tmp_path):
    """Checkpoints of earlier versions hold best_val as -Infinity (Python's json writes it)."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ck = run / "checkpoint.safetensors"
    tensors = st_load(ck.read_bytes())
    with safe_open(str(ck), framework="pt") as f:
        meta = f.metadata()
    state = json.loads(meta["state"])
    meta["state"] = json.dumps(state | {"best_val": -math.inf, "bad_epochs": 0})
    ck.write_bytes(st_save(tensors, metadata=meta))
    assert cli(["-q", "train", "--resume", str(run), "--epochs", "3", "--no-report"]) == 0


def test_json_is_written_only_through_the_strict_writer():
    src = ROOT / "src" / "vaelab"
    assert (src / "runs" / "json_text.py").is_file()  # the scan below looks at the real tree
    # runtime/parallel.py's gather_json sends values between processes, never to a file: process 0 writes what it
    # gathered through the strict writer
    apart = {"runs/json_text.py", "runtime/parallel.py"}
    loose = [name for p in src.rglob("*.py") for name in [str(p.relative_to(src))]
             if name not in apart and ("json.dump" in p.read_text() or "allow_nan=True" in p.read_text())]
    assert loose == []
