"""Malformed files and unwritable places are one error line, never a traceback (issue 11, items 5, 6, 7)."""

import gc
import os
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from clitools import expect_error
from paths import ROOT
from PIL import Image

from vaelab.cli.main import run as cli
from vaelab.data import load_images
from vaelab.errors import DataError

SRC = str(ROOT / "src")


def _npy_header(shape, dtype="<u1"):
    """The bytes of an .npy header declaring shape, with no data after it."""
    import io
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": dtype, "fortran_order": False, "shape": shape})
    return b.getvalue()


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _png(w, h):
    """A PNG whose header claims w x h grey pixels, with one tiny IDAT chunk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("members", [
    {"x_train.npy": _npy_header((2**40, 64)), "x_test.npy": _npy_header((2, 64))},  # 64 TiB declared
    {"x_train.npy": b"garbage" * 10, "x_test.npy": b"\x93NUMPY"},
    {"x.npy": _npy_header((10, 4), "|O")},
    {"x_train.npy": _npy_header((3, 4)) + b"\x00" * 5, "x_test.npy": _npy_header((3, 4)) + b"\x00" * 12},
])
def test_bad_npz_members_are_one_error(tmp_path, members):
    path = tmp_path / "d.npz"
    _zip(path, members)
    with pytest.raises(DataError) as e:
        load_images(f"npz:{path}")
    assert "\n" not in str(e.value)


def test_a_truncated_npz_leaves_no_open_file(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((20, 4), np.uint8), x_test=np.zeros((5, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-40])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(DataError):
            load_images(f"npz:{path}")
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]


def _npy_dir(tmp_path, **extra):
    d = tmp_path / "npy"
    d.mkdir()
    np.save(d / "x_train.npy", np.zeros((20, 4), np.uint8))
    np.save(d / "x_test.npy", np.zeros((5, 4), np.uint8))
    for name, value in extra.items():
        if isinstance(value, bytes):
            (d / f"{name}.npy").write_bytes(value)
        else:
            np.save(d / f"{name}.npy", value, allow_pickle=True)
    return d


@pytest.mark.parametrize("extra", [
    {"y_train": np.array([object()] * 20)},
    {"y_test": b"\x93NUMPY garbage"},
    {"y_train": _npy_header((2**40,), "<i8")},
    {"x_train": np.zeros((20, 0), np.uint8)},
    {"x_test": _npy_header((2**40, 4))},
])
def test_bad_npy_folders_are_one_error(tmp_path, extra):
    with pytest.raises(DataError) as e:
        load_images(f"npy:{_npy_dir(tmp_path, **extra)}")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("w,h", [(30000, 30000), (10000, 10000)])
def test_image_bombs_are_refused_before_decoding(tmp_path, w, h):
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((4, 4), 40 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    (tmp_path / "imgs" / "a" / "bomb.png").write_bytes(_png(w, h))
    with pytest.raises(DataError, match="bomb.png"):
        load_images(f"folder:{tmp_path / 'imgs'}")


def test_out_on_or_under_a_file_is_one_error(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    expect_error(["-q", "train", "--epochs", "1", "--out", str(f)], capsys)
    expect_error(["-q", "train", "--epochs", "1", "--out", str(f / "run")], capsys)
    assert f.read_text() == "x"


def test_a_full_disk_is_one_error(tmp_path, capsys, monkeypatch):
    from vaelab.runs import checkpoint

    def full(path, data):
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(checkpoint, "atomic_write", full)
    err = expect_error(["-q", "train", "--epochs", "1", "--hidden", "8", "--out", str(tmp_path / "run")], capsys)
    assert "No space left on device" in err


def test_report_needs_a_run_folder(tmp_path, capsys):
    expect_error(["report", str(tmp_path / "missing")], capsys)
    (tmp_path / "empty").mkdir()
    expect_error(["report", str(tmp_path / "empty")], capsys)
    assert list((tmp_path / "empty").iterdir()) == []


def test_plots_being_a_file_is_one_error(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["-q", "train", "--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--out", str(run),
                "--no-report"]) == 0
    (run / "plots").write_text("not a folder")
    expect_error(["plot", str(run), "--kind", "all"], capsys)


def test_a_closed_pipe_ends_quietly():
    """`vaelab configs | head -0`: the reader is gone before the first line; no BrokenPipeError traceback."""
    env = dict(os.environ, PYTHONPATH=SRC)
    p = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdout.flush(); time.sleep(0.5);"
                          "from vaelab.cli.main import main; main()", "configs"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # like `head` exiting at once
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert p.returncode == 1
