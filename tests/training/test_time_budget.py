"""A training-time budget (max_minutes): no epoch starts that could take the summed training time past it.

The epochs' durations come from a fake clock, so the epoch the run stops after is known in advance.
"""

from __future__ import annotations

import json
import types

import pytest
import torch
from clitools import expect_error
from safetensors.torch import load_file

import vaelab
from vaelab.config.schema import from_dict
from vaelab.errors import ConfigError
from vaelab.sweeps.stacked import check_stackable
from vaelab.training import loop as train_module
from vaelab.training.loop import another_epoch_fits

SMALL = dict(data="digits", hidden=(32,), latent_dim=4, batch_size=128, lr=1e-3, device="cpu", eval_k=20)


class EpochClock:
    """training/loop.py reads time.perf_counter twice an epoch, at its start and its end:
    epoch i lasts durations[i] s."""

    def __init__(self, durations: list[float]):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def perf_counter(self) -> float:
        if self.calls % 2:
            self.now += self.durations[self.calls // 2]
        self.calls += 1
        return self.now


def fake_epochs(monkeypatch, durations: list[float]) -> None:
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=EpochClock(durations).perf_counter))


def seconds(run) -> list[float]:
    return [json.loads(line)["train_seconds"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(path) -> torch.Tensor:
    return torch.cat([v.flatten() for v in load_file(str(path)).values()])


def test_another_epoch_fits_by_the_slowest_epoch_so_far():
    assert another_epoch_fits([], 0.01)  # the first epoch always runs
    assert another_epoch_fits([500.0], 0)  # 0: no budget
    assert another_epoch_fits([20.0, 20.0], 1)  # 40 + 20 = 60 s: exactly the budget
    assert not another_epoch_fits([20.0, 20.5], 1)  # 40.5 + 20.5 > 60
    assert not another_epoch_fits([10.0, 30.0, 5.0], 1)  # 45 + 30 > 60, though 45 + the mean 15 is not


def test_a_run_stops_before_the_epoch_that_could_pass_the_budget(tmp_path, monkeypatch):
    # 10 + 20 + 5 + 5 + 5 = 45 s; a sixth epoch as slow as the second (20 s) would make 65 > 60
    fake_epochs(monkeypatch, [10, 20, 5, 5, 5, 5, 5, 5, 5, 5])
    lines = []
    run = vaelab.train(out=tmp_path / "r", epochs=10, max_minutes=1, log=lines.append, **SMALL)
    assert seconds(run) == [10, 20, 5, 5, 5]
    assert any(line.startswith("time budget: stopped after epoch 5: 45.0 s of training") for line in lines), lines
    assert json.loads((run / "eval.json").read_text())["weights"]["epochs_trained"] == 5


def test_the_budget_counts_earlier_sessions_and_a_resume_may_raise_it(tmp_path, monkeypatch):
    fake_epochs(monkeypatch, [10] * 3)
    run = vaelab.train(out=tmp_path / "r", epochs=3, log=lambda s: None, **SMALL)
    fake_epochs(monkeypatch, [10] * 7)
    vaelab.train(out=run, resume=True, epochs=10, max_minutes=1, log=lambda s: None)
    assert seconds(run) == [10] * 6  # 60 s in all: three epochs of the first session, three of the resume
    fake_epochs(monkeypatch, [10] * 4)
    vaelab.train(out=run, resume=True, epochs=8, max_minutes=0, log=lambda s: None)
    assert seconds(run) == [10] * 8
    # stopping on the budget and resuming trains the same weights as one uninterrupted run
    fake_epochs(monkeypatch, [10] * 8)
    whole = vaelab.train(out=tmp_path / "whole", epochs=8, log=lambda s: None, **SMALL)
    assert torch.equal(weights(whole / "checkpoint.safetensors"), weights(run / "checkpoint.safetensors"))


def test_bad_budgets_and_stacking(tmp_path, capsys):
    err = expect_error(["train", "--max-minutes", "-1", "--out", str(tmp_path / "r")], capsys)
    assert "max_minutes must be >= 0" in err and not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="time budget"):
        check_stackable(from_dict({"max_minutes": 5}))
