"""Run folders after errors: validated before claiming, failed starts retried, damaged configs refused,
temporaries removed."""

import os
import time

import pytest
import torch
from clitools import expect_error, safetensors_content

from vaelab.cli.main import run as cli

FAST = ["--data", "digits", "--hidden", "32", "--latent-dim", "4", "--device", "cpu", "--eval-k", "10"]


@pytest.mark.parametrize("flags", [["--set", "shards=1000"], ["--precision", "tf32"]]
                         + ([] if torch.cuda.is_available() else [["--device", "cuda"]]))
def test_what_can_be_checked_fails_before_the_folder_is_claimed(tmp_path, capsys, flags):
    out = tmp_path / "run"
    expect_error(["train", "--epochs", "1", "--out", str(out), *FAST, *flags], capsys)
    assert not out.exists()


def test_a_divergence_in_epoch_1_leaves_a_failed_start_the_original_command_retries(tmp_path, capsys):
    out = tmp_path / "run"
    cmd = ["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]
    assert "diverged at epoch 1" in expect_error(cmd + ["--lr", "1e30"], capsys)
    assert sorted(p.name for p in out.iterdir()) == [".vaelab-starting", "config.toml", "data-source.json",
                                                     "data-view.npz", "metrics.jsonl",
                                                     "provenance.json"]  # vaelab's mark: a start, not a run
    assert cli(cmd[1:] + ["--lr", "1e30"]) == 2  # without -q, so the notice is logged (on stderr)
    said = capsys.readouterr()
    assert "diverged at epoch 1" in said.err and "held a failed start" in said.err  # not "already holds a run"
    assert "diverged at epoch 1" in expect_error(["-q", "train", "--resume", str(out)], capsys)  # from epoch 0
    assert cli(cmd) == 0  # another lr, same folder, no --overwrite
    assert (out / "checkpoint.safetensors").is_file() and "lr = 0.001" in (out / "config.toml").read_text()


def test_resume_of_a_failed_start_trains_it_from_epoch_0_as_saved(tmp_path, capsys, monkeypatch):
    from vaelab.runs import checkpoint

    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(["-q", "train", "--epochs", "2", "--out", str(a), "--no-report", *FAST]) == 0
    write = checkpoint.atomic_write

    def no_checkpoint(path, data):  # as a kill in epoch 1, after the weights, before the checkpoint
        if str(path).endswith("checkpoint.safetensors"):
            raise OSError(28, "No space left on device", str(path))
        write(path, data)
    monkeypatch.setattr(checkpoint, "atomic_write", no_checkpoint)
    expect_error(["-q", "train", "--epochs", "2", "--out", str(b), "--no-report", *FAST], capsys)
    monkeypatch.undo()
    assert (b / "model.safetensors").is_file() and not (b / "checkpoint.safetensors").exists()
    assert cli(["-q", "train", "--resume", str(b), "--no-report"]) == 0
    for name in ("model.safetensors", "checkpoint.safetensors"):
        assert safetensors_content(a / name) == safetensors_content(b / name), name
    assert not (b / ".vaelab-starting").exists()  # the first checkpoint ended the start


def test_a_run_whose_checkpoint_was_deleted_is_a_run_not_a_failed_start(tmp_path, capsys):
    """Issue 27, item 7: deleting checkpoint.safetensors of a finished run (to save space) made it a "failed
    start": `train --out RUN` deleted the whole folder (a user's notes too) and `--resume` retrained from 0."""
    out = tmp_path / "run"
    assert cli(["-q", "train", "--epochs", "2", "--out", str(out), *FAST]) == 0
    (out / "checkpoint.safetensors").unlink()
    (out / "NOTES.txt").write_text("mine")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert "already holds a run" in expect_error(["-q", "train", "--epochs", "1", "--out", str(out), *FAST,
                                                  "--latent-dim", "3"], capsys)
    err = expect_error(["-q", "train", "--resume", str(out)], capsys)
    assert "no checkpoint.safetensors" in err and "cannot continue" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing deleted or rewritten
    assert cli(["-q", "evaluate", str(out), "--k", "5"]) == 0  # and it is still a run to use


def test_a_failed_start_holding_a_users_file_is_never_cleared_unasked(tmp_path, capsys):
    out = tmp_path / "run"
    cmd = ["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]
    expect_error(cmd + ["--lr", "1e30"], capsys)  # a failed start, marked by vaelab
    (out / "NOTES.txt").write_text("mine")
    err = expect_error(cmd, capsys)
    assert "files vaelab did not write (NOTES.txt)" in err
    assert (out / "NOTES.txt").read_text() == "mine" and (out / "config.toml").is_file()
    assert cli(cmd + ["--overwrite"]) == 0  # asked for: replaced
    assert not (out / "NOTES.txt").exists() and (out / "checkpoint.safetensors").is_file()


def test_a_complete_run_is_never_reclaimed_and_a_foreign_folder_never_deleted(tmp_path, capsys):
    out = tmp_path / "run"
    cmd = ["-q", "train", "--epochs", "0", "--out", str(out), "--no-report", *FAST]
    assert cli(cmd) == 0
    assert (out / "checkpoint.safetensors").is_file()  # zero epochs is a complete run too
    assert "already holds a run" in expect_error(cmd, capsys)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    expect_error(["-q", "train", "--epochs", "1", "--out", str(mine), *FAST], capsys)
    assert (mine / "notes.txt").read_text() == "keep"


def test_an_empty_config_is_one_clear_error_never_defaults(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]) == 0
    (out / "config.toml").write_text("")
    assert "config.toml is empty" in expect_error(["-q", "train", "--resume", str(out)], capsys)
    assert "config.toml is empty" in expect_error(["-q", "evaluate", str(out)], capsys)
    (out / "config.toml").write_text('model = "vae"\n')
    assert "config.toml is damaged (no data" in expect_error(["-q", "train", "--resume", str(out)], capsys)


def test_temporaries_of_killed_writes_are_removed_when_a_run_is_opened(tmp_path):
    out = tmp_path / "run"
    assert cli(["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]) == 0
    (out / "plots").mkdir()
    stale = [out / ".checkpoint.safetensors.abcd1234.tmp", out / "plots" / ".curves.png.x9y8z7w6.tmp"]
    for p in stale:
        p.write_bytes(b"half")
        os.utime(p, (time.time() - 3600,) * 2)
    live = out / ".eval.json.live0000.tmp"  # another process's write in progress
    live.write_bytes(b"{")
    assert cli(["-q", "evaluate", str(out)]) == 0
    assert not any(p.exists() for p in stale) and live.exists()
    assert cli(["-q", "train", "--resume", str(out), "--no-report"]) == 0  # a resume owns the folder: all go
    assert not live.exists()


def test_a_kill_at_the_first_write_leaves_a_folder_the_original_command_claims(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".config.toml.k1ll3d00.tmp").write_text('model = "va')  # SIGKILL while config.toml was written
    assert "run its original command again" in expect_error(["-q", "train", "--resume", str(out)], capsys)
    assert cli(["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "config.toml", "data-source.json",
                                                     "data-view.npz", "metrics.jsonl", "model.safetensors",
                                                     "provenance.json"]


def test_a_live_run_in_its_first_epoch_is_never_taken_for_a_failed_start(tmp_path, capsys):
    from vaelab.runs.folder import RunFolder

    out = tmp_path / "run"
    cmd = ["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]
    assert cli(cmd + ["--lr", "1e30"]) == 2  # config.toml, no checkpoint
    capsys.readouterr()
    with RunFolder(out).training():  # as another process training in it
        assert "being trained by another process" in expect_error(cmd, capsys)
        assert "being trained by another process" in expect_error(["-q", "train", "--resume", str(out)], capsys)
    assert (out / "config.toml").is_file()
    assert cli(cmd) == 0
