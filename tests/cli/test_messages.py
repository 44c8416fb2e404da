"""Error messages say what went wrong and where (issue 27, item 17): the process holding a folder, the file a
full disk refused, the flags that continue or replace a run, the label that is out of range."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clitools import expect_error

import vaelab
from vaelab.cli.main import run as cli

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


@pytest.mark.parametrize("label", [2**40, -7, 2**20])
def test_a_label_that_is_no_class_number_is_one_error_naming_it(tmp_path, capsys, label):
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 3
    y[5] = label
    npz = tmp_path / "d.npz"
    np.savez(npz, x=x, y=y)
    err = expect_error(["-q", "train", "--data", f"npz:{npz}", "--epochs", "1", "--out", str(tmp_path / "r"),
                        "--hidden", "8", "--no-report"], capsys)
    assert f"holds the label {label}; labels are class numbers from 0 to {2**20 - 1}" in err
    npy = tmp_path / "npy"
    npy.mkdir()
    for split, n in (("train", 30), ("test", 10)):
        np.save(npy / f"x_{split}.npy", x[:n].reshape(n, 64))
        np.save(npy / f"y_{split}.npy", y[:n])
    err = expect_error(["-q", "train", "--data", f"npy:{npy}", "--epochs", "1", "--out", str(tmp_path / "r"),
                        "--hidden", "8", "--no-report"], capsys)
    assert f"y_train.npy holds the label {label}" in err
    with pytest.raises(vaelab.VaelabError, match=f"labels holds the label {label};"):
        vaelab.train(data=x, labels=y, out=tmp_path / "r", epochs=1, finish=False)
    assert not (tmp_path / "r").exists()


def test_labels_up_to_the_limit_are_class_numbers(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 3
    y[5] = 2**20 - 1
    run = vaelab.train(data=x, labels=y, out=tmp_path / "r", epochs=1, hidden=(8,), latent_dim=2, finish=False,
                       log=lambda s: None)
    assert np.array_equal(np.load(run / "data.npz")["y"], y)
