"""Claiming run folders (issue 27, items 5, 6 and 9): one process per folder, overwrite keeps the old run
until the new one has committed an epoch, sweeps lock their folders too.

Races are made deterministic with real processes at fixed points: a lock held by this process (as a
process that has just claimed the folder holds it), or a second `vaelab` process started from inside
the first one's epoch hook, or a process that SIGKILLs itself where its first checkpoint would be written.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import expect_error
from paths import ROOT

import vaelab
from vaelab.cli.main import run as cli
from vaelab.runs import folder_swap
from vaelab.runs.folder import RunFolder

SRC = str(ROOT / "src")
FAST = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--device", "cpu", "--eval-k", "5"]
SMALL = dict(data="digits", hidden=(16,), latent_dim=2, device="cpu", eval_k=5, log=lambda s: None)
# `vaelab` that SIGKILLs itself where it would write its first checkpoint
KILLED_AT_CHECKPOINT = ("import os, signal, sys; import vaelab.training.epochs as e; "
                        "e.save_checkpoint = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL); "
                        "from vaelab.cli.main import run; sys.exit(run(sys.argv[1:]))")


def _vaelab(*args: str, kill_at_checkpoint: bool = False) -> subprocess.CompletedProcess:
    """Another process running the CLI (this checkout's code)."""
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    head = ["-c", KILLED_AT_CHECKPOINT] if kill_at_checkpoint else ["-m", "vaelab"]
    return subprocess.run([sys.executable, *head, "-q", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def _one_error(p: subprocess.CompletedProcess) -> str:
    err = p.stderr.strip()
    assert p.returncode == 2 and len(err.splitlines()) == 1 and err.startswith("vaelab: error:"), (p.returncode, err)
    return err


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _siblings(run: Path) -> list[str]:
    return sorted(p.name for p in run.parent.iterdir() if p.name.startswith(f".{run.name}."))


def _old_run(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    run = tmp_path / "run"
    assert cli(["-q", "train", "--epochs", "2", "--out", str(run), *FAST]) == 0
    (run / "NOTES.txt").write_text("mine")
    return run, _files(run)


class Hook:
    """A per-epoch output that runs another vaelab command once, inside the first epoch of the run named."""

    def __init__(self, name: str, *commands: list[str]):
        self.name, self.commands, self.done = name, commands, []

    def on_epoch(self, run, row, model):
        if run.name == self.name and not self.done:
            self.done = [_vaelab(*c) for c in self.commands]


def test_overwrite_waits_for_no_one_it_refuses_while_the_run_is_trained(tmp_path, capsys):
    """Item 5: `--overwrite` ignored the lock; both processes exited 0 and the folder mixed their files."""
    run, before = _old_run(tmp_path)
    with RunFolder(run).training():  # as a process training in it holds it
        err = expect_error(["-q", "train", "--epochs", "1", "--out", str(run), "--overwrite", *FAST], capsys)
        assert "being trained by another process" in err
    assert _files(run) == before and _siblings(run) == []


def test_an_overwrite_started_during_training_fails_and_the_run_stays_whole(tmp_path):
    run = tmp_path / "run"
    hook = Hook("run", ["train", "--epochs", "1", "--out", str(run), "--overwrite", *FAST, "--latent-dim", "3"])
    vaelab.train(out=run, epochs=3, outputs=[hook], **SMALL)
    assert "being trained by another process" in _one_error(hook.done[0])
    config = RunFolder(run).read_config()
    assert config.latent_dim == 2 and config.epochs == 3  # this run's config, weights and checkpoint throughout
    assert [r["epoch"] for r in RunFolder(run).read_metrics()] == [1, 2, 3]
    assert vaelab.train(out=run, resume=True, epochs=4, finish=False, log=lambda s: None) == run


@pytest.mark.parametrize("swap", ["renameat2", "three renames"])
def test_a_diverging_overwrite_leaves_the_old_run_as_it_was(tmp_path, capsys, monkeypatch, swap):
    """Item 6: the old run was deleted before the new one had trained anything (`--lr` 1e30 then diverges).
    The same with the swap of systems without renameat2's exchange."""
    if swap == "three renames":
        monkeypatch.setattr(folder_swap, "_libc", lambda: object())
    run, before = _old_run(tmp_path)
    cmd = ["-q", "train", "--epochs", "2", "--out", str(run), "--overwrite", "--no-report", *FAST]
    assert "diverged at epoch 1" in expect_error(cmd + ["--lr", "1e30"], capsys)
    assert _files(run) == before and _siblings(run) == []  # every file, the user's notes too; nothing left over
    assert cli(cmd) == 0  # a working overwrite replaces it, and leaves nothing aside
    assert not (run / "NOTES.txt").exists() and (run / "checkpoint.safetensors").is_file()
    assert not (run / ".vaelab-starting").exists() and _siblings(run) == []


def test_an_overwrite_killed_before_its_first_checkpoint_is_undone_by_the_next_command(tmp_path, capsys):
    run, before = _old_run(tmp_path)
    overwrite = ["train", "--epochs", "2", "--out", str(run), "--overwrite", "--no-report", *FAST, "--latent-dim", "3"]
    assert _vaelab(*overwrite, kill_at_checkpoint=True).returncode == -9
    # the killed overwrite: the new run at RUN (a failed start), the old one whole beside it until the commit
    (kept,) = _siblings(run)
    assert _files(run.parent / kept) == before
    assert json.loads((run / ".vaelab-starting").read_text()) == {"replaces": kept}
    # the same command without overwrite: the old run comes back, and is not replaced
    plain = [a for a in overwrite if a != "--overwrite"]
    assert "already holds a run" in expect_error(["-q", *plain], capsys)
    assert _files(run) == before and _siblings(run) == []
    # resume after a killed overwrite continues the old run
    assert _vaelab(*overwrite, kill_at_checkpoint=True).returncode == -9
    assert cli(["-q", "train", "--resume", str(run), "--epochs", "3", "--no-report"]) == 0
    assert RunFolder(run).read_config().latent_dim == 2 and len(RunFolder(run).read_metrics()) == 3
    assert _siblings(run) == [] and (run / "NOTES.txt").read_text() == "mine"
    # and the overwrite itself, run again, replaces it
    assert _vaelab(*overwrite, kill_at_checkpoint=True).returncode == -9
    assert cli(["-q", *overwrite]) == 0
    assert RunFolder(run).read_config().latent_dim == 3 and _siblings(run) == []
    assert not (run / "NOTES.txt").exists() and not (run / ".vaelab-starting").exists()


def test_a_sweep_holds_its_folder_and_every_run_in_it(tmp_path):
    """Item 9: sweep members trained without the lock (`train --resume S/seed0` during the sweep: both exit 0,
    and provenance lost a session); `train --out S` during the sweep wrote into the sweep folder."""
    root = tmp_path / "sw"
    member = root / "seed0"
    hook = Hook("seed0", ["train", "--resume", str(member), "--no-report"],
                ["train", "--epochs", "1", "--out", str(root), "--overwrite", *FAST])
    vaelab.sweep(seeds=2, out=root, epochs=2, outputs=[hook], **SMALL)
    resume, train = hook.done
    assert "being trained by another process" in _one_error(resume)
    assert "by another process" in _one_error(train)
    assert (root / "sweep.json").is_file() and not (root / "config.toml").exists()
    # once the sweep is done, a run of it is continued as any run: one more session in its provenance
    assert cli(["-q", "train", "--resume", str(member), "--epochs", "3", "--no-report"]) == 0
    sessions = RunFolder(member).read_provenance()
    assert [s.get("first_epoch") for s in sessions] == [1, 3], sessions
    # and a sweep is not replaced while one of its runs is trained
    before = _files(root)
    with RunFolder(member).training():
        assert "being trained by another process" in _one_error(
            _vaelab("sweep", "--seeds", "2", "--epochs", "1", "--out", str(root), "--overwrite", *FAST))
    assert _files(root) == before


def test_a_sweep_and_a_train_claiming_one_folder_at_once_never_both_win(tmp_path, capsys):
    """Both saw the folder free and both wrote into it. Whoever holds the lock decides; here the other one
    holds it on a still empty folder, the moment right after its claim."""
    out = tmp_path / "x"
    out.mkdir()
    with RunFolder(out).training():  # a `train --out x` that has just claimed it
        expect_error(["-q", "sweep", "--seeds", "2", "--epochs", "1", "--out", str(out), "--no-report", *FAST],
                     capsys)
    assert list(out.iterdir()) == []
    with RunFolder(out).training():  # a `sweep --out x` that has just claimed it
        expect_error(["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST], capsys)
    assert list(out.iterdir()) == []
    assert cli(["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]) == 0  # free: it wins
    err = expect_error(["-q", "sweep", "--seeds", "2", "--epochs", "1", "--out", str(out), "--no-report", *FAST],
                       capsys)
    assert "not a vaelab sweep folder" in err and (out / "checkpoint.safetensors").is_file()


def test_what_a_kill_left_beside_a_run_is_tidied_and_nothing_else(tmp_path, capsys):
    """A kill between an overwrite's mark and its exchange leaves a hidden sibling holding the mark alone:
    the next claim of the run removes it. A sibling-named folder holding anything else is left alone."""
    run, _ = _old_run(tmp_path)
    stale, other = tmp_path / ".run.vaelab-0123abcd", tmp_path / ".run.vaelab-4567cdef"
    stale.mkdir()
    (stale / ".vaelab-starting").write_text(json.dumps({"replaces": stale.name}))
    other.mkdir()
    (other / ".vaelab-starting").write_text("{}")
    (other / "NOTES.txt").write_text("mine")
    assert cli(["-q", "train", "--epochs", "1", "--out", str(run), "--overwrite", "--no-report", *FAST]) == 0
    assert _siblings(run) == [other.name] and (other / "NOTES.txt").read_text() == "mine"
