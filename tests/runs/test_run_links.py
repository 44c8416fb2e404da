"""Symbolic links planted as a run's subfolders are refused, never followed (issue 27, item 12).

A link RUN/plots -> elsewhere would have PNGs written elsewhere, RUN/evals eval files, RUN/epochs
weights, and `report` / `evaluate` delete the temporaries (.*.tmp) they find there. Every command
that opens the run says so in one line, exits 2 and touches nothing behind the link.
"""

import os
import shutil
import time

import pytest
from clitools import expect_error

from vaelab.cli.main import run as cli

FAST = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--device", "cpu", "--eval-k", "5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("links") / "run"
    assert cli(["-q", "train", "--epochs", "1", "--out", str(run), "--no-report", *FAST]) == 0
    return run


def _plant(run, name, tmp_path):
    """RUN/name -> a folder outside the run holding a file and an old temporary (as a killed write leaves)."""
    outside = tmp_path / f"outside-{name}"
    outside.mkdir()
    (outside / "mine.txt").write_text("keep")
    stale = outside / ".samples.png.abcd1234.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600,) * 2)  # older than any live write: removed if ever reached
    os.symlink(outside, run / name)
    return outside


EVERY = ("plots", "evals", "epochs", "tensorboard")
CASES = [(name, command) for names, command in [
    (EVERY, ["evaluate", "{run}", "--k", "5"]),  # writes evals/, removes temporaries in all three
    (EVERY, ["report", "{run}"]),  # reads plots/, removes temporaries in all three
    (EVERY, ["train", "--resume", "{run}", "--epochs", "2", "--set", "save_every=1", "--no-report"]),
    (("plots",), ["plot", "{run}", "--kind", "samples"]),
    (("epochs",), ["plot", "{run}", "--kind", "latent-epochs"]),  # reads the kept epochs' weights
] for name in names]


@pytest.mark.parametrize("name,command", CASES, ids=[f"{c[0]}-{n}" for n, c in CASES])
def test_a_linked_subfolder_is_refused_and_nothing_behind_it_changes(trained, tmp_path, capsys, name, command):
    run = tmp_path / "run"
    shutil.copytree(trained, run, symlinks=True)
    outside = _plant(run, name, tmp_path)
    before = sorted(p.name for p in outside.iterdir())
    err = expect_error(["-q", *[a.format(run=run) for a in command]], capsys)
    assert "symbolic link" in err and f"{name}/" in err, err
    assert sorted(p.name for p in outside.iterdir()) == before  # nothing written there, nothing deleted
    assert (run / name).is_symlink()  # and the link itself is left for the user to remove


def test_a_run_without_links_still_writes_each_subfolder(trained, tmp_path):
    """The refusal is about links alone: real subfolders are made and filled as before."""
    run = tmp_path / "run"
    shutil.copytree(trained, run, symlinks=True)
    assert cli(["-q", "train", "--resume", str(run), "--epochs", "2", "--set", "save_every=1"]) == 0
    assert (run / "epochs" / "epoch-002.safetensors").is_file()
    assert (run / "evals").is_dir() and (run / "plots" / "samples.png").is_file()
