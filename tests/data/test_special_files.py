"""Only regular files are read as data: a FIFO, a device or a folder in a data file's place is one error line
saying what the path is, never a hang (issue 27, item 16)."""

import os
import shutil
import signal
from contextlib import contextmanager

import numpy as np
import pytest
from clitools import expect_error
from fuzzing import listing

from vaelab.cli.main import run as cli
from vaelab.errors import VaelabError


@contextmanager
def no_hang(seconds: float = 20):
    """Fail (instead of waiting forever) when the block has not returned after `seconds`; a blocked open() of a
    FIFO is interrupted by the alarm's signal."""
    def hung(signum, frame):
        raise AssertionError(f"still blocked after {seconds} s")
    old = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _npy_dir(root, n=120, d=16):
    root.mkdir()
    x = np.random.default_rng(0).integers(0, 256, (n, d)).astype(np.uint8)
    np.save(root / "x_train.npy", x)
    np.save(root / "x_test.npy", x[:30])
    np.save(root / "y_train.npy", np.arange(n) % 3)
    np.save(root / "y_test.npy", np.arange(30) % 3)


@pytest.mark.parametrize("name", ["x_train.npy", "x_test.npy", "y_train.npy"])
def test_train_refuses_a_fifo_in_an_npy_folder(tmp_path, capsys, name):
    root = tmp_path / "d"
    _npy_dir(root)
    (root / name).unlink()
    os.mkfifo(root / name)
    with no_hang():
        err = expect_error(["-q", "train", "--data", f"npy:{root}", "--epochs", "1", "--out", str(tmp_path / "r")],
                           capsys)
    assert name in err and "named pipe" in err
    assert not (tmp_path / "r").exists()


def test_evaluate_refuses_a_fifo_named_by_the_runs_config(tmp_path, capsys):
    root = tmp_path / "d"
    _npy_dir(root)
    run = tmp_path / "r"
    assert cli(["-q", "train", "--data", f"npy:{root}", "--epochs", "1", "--hidden", "8", "--latent-dim", "2",
                "--out", str(run), "--no-report"]) == 0
    (root / "x_train.npy").unlink()
    os.mkfifo(root / "x_train.npy")
    before = listing(run)
    with no_hang():
        err = expect_error(["-q", "evaluate", str(run), "--k", "2"], capsys)
    assert "x_train.npy" in err and "named pipe" in err
    assert listing(run) == before


@pytest.mark.parametrize("path, kind", [("/dev/zero", "character device"), ("FOLDER", "directory"),
                                        ("FIFO", "named pipe")])
def test_npz_accepts_only_a_regular_file(tmp_path, capsys, path, kind):
    if path == "FOLDER":
        path = str(tmp_path)
    elif path == "FIFO":
        path = str(tmp_path / "d.npz")
        os.mkfifo(path)
    with no_hang():
        err = expect_error(["-q", "train", "--data", f"npz:{path}", "--epochs", "1", "--out", str(tmp_path / "r")],
                           capsys)
    assert kind in err and path in err and "not found" not in err


def test_missing_files_still_say_not_found(tmp_path, capsys):
    err = expect_error(["-q", "train", "--data", f"npz:{tmp_path / 'no.npz'}", "--out", str(tmp_path / "r")], capsys)
    assert "not found" in err


def test_a_link_to_a_regular_file_is_read(tmp_path):
    from vaelab.data import load_images
    root = tmp_path / "d"
    _npy_dir(root)
    real = tmp_path / "x_test_real.npy"
    shutil.move(root / "x_test.npy", real)
    os.symlink(real, root / "x_test.npy")
    assert len(load_images(f"npy:{root}").test) == 30


def test_docs_and_corpus_files_must_be_regular(tmp_path):
    from vaelab.data import load_corpus
    from vaelab.topics.encode import read_texts

    fifo = tmp_path / "docs.txt"
    os.mkfifo(fifo)
    with no_hang(), pytest.raises(VaelabError, match="named pipe"):
        read_texts(fifo)
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "corpus.tsv").write_text("a b c\ttrain\nb c d\ttest\n")
    os.mkfifo(root / "vocabulary.txt")
    with no_hang(), pytest.raises(VaelabError, match="vocabulary.txt.*named pipe"):
        load_corpus(f"corpus:{root}", log=lambda s: None)


def test_docs_from_a_device_are_refused_before_reading():
    from vaelab.topics.encode import read_texts
    with no_hang(), pytest.raises(VaelabError, match="character device"):
        read_texts("/dev/zero")  # which never ends: reading it would fill the memory
