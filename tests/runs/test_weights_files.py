"""A weights file's 8-byte length and JSON header are checked before any tensor is read, and its tensors
are mapped, not read whole (issue 27, item 15). Each damaged file is one error line; the huge ones are
tested in a child process whose address space could not hold them."""

import json
import shutil
import struct

import pytest
import torch
from limits import GiB, run_capped
from safetensors import safe_open

from vaelab.cli.main import run as cli
from vaelab.errors import CheckpointError
from vaelab.runs.checkpoint import load_weights

BIG = 3 * GiB  # what the issue saw: a 3 GB model.safetensors


def _raw_file(path, tensors: dict, meta: dict | None, length: int | None = None, data_bytes: int | None = None):
    """A safetensors file written by hand: tensors = name -> (dtype, shape); its data a hole (a sparse file)."""
    header, at = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = {"F32": 4, "I64": 8, "U8": 1}[dtype] * torch.Size(shape).numel()
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    if meta is not None:
        header["__metadata__"] = meta
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if length is None else length) + text)
        f.truncate(8 + len(text) + (at if data_bytes is None else data_bytes))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("weights") / "run"
    assert cli(["-q", "train", "--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--out", str(run),
                "--no-report"]) == 0
    return run


def _meta(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


@pytest.mark.parametrize("what", ["wrong shape", "extra tensor"])
def test_a_3gb_weights_file_is_refused_from_its_header(trained, tmp_path, what):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "model.safetensors"
    with safe_open(str(path), framework="pt") as f:
        own = {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()}
    if what == "wrong shape":
        own["decoder.0.weight"] = ("F32", [BIG // 4])
    else:
        own["huge"] = ("F32", [BIG // 4])
    _raw_file(path, own, _meta(path))
    out = run_capped(["-q", "evaluate", str(run), "--k", "2"], GiB, tmp_path)
    err = out.stderr.strip()
    assert out.returncode == 2 and len(err.splitlines()) == 1, err
    assert ("decoder.0.weight" in err and str(BIG // 4) in err) if what == "wrong shape" else "huge" in err


def test_a_3gb_checkpoint_is_refused_from_its_header(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "checkpoint.safetensors"
    with safe_open(str(path), framework="pt") as f:
        own = {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()}
    name = next(k for k in own if k.endswith(".exp_avg"))
    own[name] = ("F32", [BIG // 4])
    _raw_file(path, own, _meta(path))
    out = run_capped(["-q", "train", "--resume", str(run), "--epochs", "2"], GiB, tmp_path)
    err = out.stderr.strip()
    assert out.returncode == 2 and len(err.splitlines()) == 1 and name in err, err


@pytest.mark.parametrize("damage, words", [
    (dict(length=2**62), "header"),  # the 8-byte length claims more than the file holds
    (dict(length=0), "header"),
    (dict(data_bytes=2), "holds"),  # offsets past the end of the file
])
def test_a_damaged_header_is_one_error(tmp_path, damage, words):
    path = tmp_path / "model.safetensors"
    _raw_file(path, {"weight": ("F32", [2, 2]), "bias": ("F32", [2])}, {"shape": "[2]"}, **damage)
    with pytest.raises(CheckpointError, match=words) as e:
        load_weights(path, torch.nn.Linear(2, 2))
    assert "\n" not in str(e.value) and str(path) in str(e.value)

