"""Error messages say what went wrong and where (issue 27, item 17): the process holding a folder, the file a
full disk refused, the flags that continue or replace a run, the label that is out of range."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vaelab.cli.main import run as cli
from clitools import expect_error

TINY = ["--data", "digits", "--hidden", "8", "--latent-dim", "2", "--batch-size", "256", "--device", "cpu",
        "--no-report"]
HOLD = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); " \
       "print('locked', flush=True); time.sleep(600)"


@pytest.fixture()
def holder(tmp_path):
    """Another process holding the lock `vaelab train` takes on a folder, as a second train --out would meet it."""
    procs = []

    def hold(folder):
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()
        p.stdout.close()


def test_a_second_train_into_a_folder_names_the_process_training_there(tmp_path, capsys, holder):
    out = tmp_path / "Y"
    out.mkdir()  # the first process claimed Y and has not written its config yet
    p = holder(out)
    err = expect_error(["-q", "train", "--epochs", "1", "--out", str(out), *TINY], capsys)
    assert f"{out} is being trained by another process (pid {p.pid}: {sys.executable} -c import fcntl" in err, err
    assert list(out.iterdir()) == []  # and nothing was written into it


def test_resuming_a_run_another_process_trains_names_that_process(tmp_path, capsys, holder):
    out = tmp_path / "R"
    assert cli(["-q", "train", "--epochs", "1", "--out", str(out), *TINY]) == 0
    p = holder(out)
    err = expect_error(["-q", "train", "--resume", str(out), "--epochs", "2"], capsys)
    assert f"being trained by another process (pid {p.pid}:" in err, err


def test_a_full_disk_names_the_file_it_refused(tmp_path, capsys, monkeypatch):
    import os

    def full(fd):  # the kernel's ENOSPC from fsync (or write) names no file
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "run"
    err = expect_error(["-q", "train", "--epochs", "1", "--out", str(out), *TINY], capsys)
    assert err.startswith(f"vaelab: error: {out}/") and err.endswith(": No space left on device"), err
    refused = err.removeprefix("vaelab: error: ").removesuffix(": No space left on device")
    assert Path(refused).parent == out and not Path(refused).exists()  # a run file, and no half of it written
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
