"""Logging the way the ecosystem does: quiet library, plain redirected logs, TensorBoard events, provenance."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clitools import expect_error
from paths import ROOT

import vaelab
from vaelab import api, logs
from vaelab.runtime import precision

SRC = ROOT / "src"
FAST = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "128"]
TINY = dict(hidden=(16,), latent_dim=2, batch_size=128, finish=False)


def test_a_training_log_redirected_to_a_file_has_one_plain_line_per_epoch(tmp_path):
    out, log = tmp_path / "run", tmp_path / "log"
    argv = [sys.executable, "-m", "vaelab", "train", "--epochs", "3", "--eval-k", "4", "--out", str(out), *FAST]
    with log.open("wb") as f:  # `vaelab train ... > log 2>&1`: progress bars asked for, but no terminal
        done = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path, timeout=300,
                              env=os.environ | {"PYTHONPATH": str(SRC)})
    text = log.read_bytes().decode()
    assert done.returncode == 0, text
    assert "\r" not in text
    epochs = [line for line in text.splitlines() if line.startswith("epoch")]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [f"train loss {r['train_loss']:.3f}" in e for r, e in zip(rows, epochs)] == [True] * 3
    assert len(epochs) == 3 and "test ELBO" in text  # the final evaluation ran, its bar unseen
    # the provenance records this very command, this interpreter and this torch
    (s,) = json.loads((out / "provenance.json").read_text())["sessions"]
    assert s["command"] == "python -m vaelab " + " ".join(argv[3:])
    assert (s["torch"], s["python"], s["vaelab"]) == (torch.__version__, platform.python_version(), vaelab.__version__)
    assert s["cwd"] == str(tmp_path) and s["git_commit"] is None  # tmp_path is in no repository
    assert (s["first_epoch"], s["last_epoch"], s["seed"], s["device"]) == (1, 3, 0, "cpu")


@pytest.mark.precision(kind="auto")  # exact values in whatever precision auto picks here (runs compared alike)
def test_provenance_names_the_repository_commit_and_each_resumed_session(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    try:
        subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
        (repo / "a.txt").write_text("a\n")
        subprocess.run(git + ["add", "a.txt"], check=True, timeout=30)
        subprocess.run(git + ["commit", "-qm", "a"], check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("no working git")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    run = api.train(data="digits", epochs=1, seed=7, out=tmp_path / "run", **TINY)
    api.train(out=run, resume=True, epochs=2, finish=False)
    first, second = json.loads((run / "provenance.json").read_text())["sessions"]
    assert first["git_commit"] == second["git_commit"] == head and first["git_dirty"] is False
    assert (first["first_epoch"], first["last_epoch"], second["first_epoch"], second["last_epoch"]) == (1, 1, 2, 2)
    # each session records the precision it trained in and why: auto's decision, from the hardware's facts
    assert first["precision"] == second["precision"] == precision.choose("auto", torch.device("cpu"))
    assert first["precision_why"].startswith("auto: CPU flags") and first["precision"] in first["precision_why"]
    assert first["threads"] == torch.get_num_threads() and first["seed"] == 7
    assert 0 < first["wall_seconds"] < 300 and first["finished"] <= second["started"]


def test_the_library_is_quiet_until_logging_is_configured(tmp_path, capfd):
    logger = logging.getLogger("vaelab")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    try:
        api.train(data="digits", epochs=1, out=tmp_path / "a", **TINY)
        assert capfd.readouterr() == ("", "")
        logs.configure_logging(0)
        api.train(data="digits", epochs=1, out=tmp_path / "b", **TINY)
        assert capfd.readouterr().err.startswith("epoch   1  train loss")
        logs.configure_logging(-1)  # -q: warnings only
        api.train(data="digits", epochs=1, out=tmp_path / "c", **TINY)
        assert capfd.readouterr() == ("", "")
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


def test_tensorboard_logs_each_models_metrics_images_and_hyper_parameters(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    from vaelab.training.tensorboard_log import TensorBoardLog

    out = TensorBoardLog()
    root = vaelab.sweep(seeds=2, data="digits", epochs=2, lr=3e-3, out=tmp_path / "sweep", outputs=[out], **TINY)
    out.close()
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(folders) == 2  # a stacked group: each model logs through its own epoch writer
    for run in folders:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        ea = _events(run / "tensorboard")
        for key, t in (("train_loss", "train/loss"), ("val_elbo", "val/elbo"), ("train_seconds", "train/seconds")):
            logged = [(e.step, e.value) for e in ea.Scalars(t)]
            assert [s for s, _ in logged] == [1, 2]
            assert [v for _, v in logged] == pytest.approx([r[key] for r in rows], rel=1e-6)  # float32 events
        sample = ea.Images("samples")[-1]
        assert sample.step == 2 and (sample.width, sample.height) == (8 * 9 + 1, 8 * 9 + 1)  # 8x8 tiles of 8x8
        assert (ea.Images("reconstructions")[-1].height, ea.Images("reconstructions")[-1].width) == (19, 73)
        info = plugin_data_pb2.HParamsPluginData.FromString(
            ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        )
        hp = info.session_start_info.hparams
        assert hp["lr"].number_value == pytest.approx(3e-3) and hp["hidden"].string_value == "16"
        assert hp["seed"].number_value == json.loads((run / "provenance.json").read_text())["sessions"][0]["seed"]


def test_a_missing_tensorboard_is_one_error_line_and_nothing_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    err = expect_error(["train", "--epochs", "1", "--out", str(tmp_path / "r"), "--log", "tensorboard", *FAST], capsys)
    assert "pip install" in err and "tensorboard" in err
    assert not (tmp_path / "r").exists()
