"""Data-parallel training: split noise, sharded batches, and 2 processes (on one node or two) matching 1 (gloo, CPU)."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from paths import ROOT
from safetensors.torch import load_file

from vaelab.distributions.densities import diagonal_normal
from vaelab.runtime import split_noise
from vaelab.training.batches import ResidentBatches

SRC = str(ROOT / "src")


def test_split_noise_is_a_slice_of_the_whole_batch_draw():
    loc, scale = torch.randn(6, 5), torch.rand(6, 5) + 0.1
    torch.manual_seed(0)
    z = split_noise.rsample(diagonal_normal(loc, scale), 3)  # (3, 6, 5)
    torch.manual_seed(0)
    u = split_noise.uniform((6, 7), device=torch.device("cpu"), dtype=torch.float32)
    for part in range(2):
        rows = slice(3 * part, 3 * part + 3)
        torch.manual_seed(0)
        with split_noise.split_batch(2, part):
            assert torch.equal(split_noise.rsample(diagonal_normal(loc[rows], scale[rows]), 3), z[:, rows])
        torch.manual_seed(0)
        with split_noise.split_batch(2, part):
            assert torch.equal(split_noise.uniform((3, 7), device=torch.device("cpu"), dtype=torch.float32), u[rows])


def test_shards_held_apart_give_the_batches_of_shards_held_together():
    stored = torch.arange(103).unsqueeze(1)  # row i holds the value i
    cpu = torch.device("cpu")
    whole = ResidentBatches(stored, 8, seed=5, device=cpu, shards=2)
    parts = [ResidentBatches(stored, 8, seed=5, device=cpu, shards=2, held=[s]) for s in (0, 1)]
    assert whole.steps == min(52, 51) // 4 == 12 and whole.rows_per_epoch() == 96
    for epoch in (1, 2):
        seen = []
        for (ws, wi), (s0, i0), (s1, i1) in zip(whole.epoch(epoch), parts[0].epoch(epoch), parts[1].epoch(epoch)):
            batch = ws[wi].squeeze(1)
            assert torch.equal(batch, torch.cat([s0[i0], s1[i1]]).squeeze(1))
            assert (batch[:4] % 2 == 0).all() and (batch[4:] % 2 == 1).all()  # shard-major
            seen += batch.tolist()
        assert len(seen) == len(set(seen)) == 96  # no row twice in an epoch
    one = ResidentBatches(stored, 8, seed=5, device=cpu)
    assert one.steps == 13
    assert sorted(torch.cat([s[i] for s, i in one.epoch(1)]).squeeze(1).tolist()) == list(range(103))


@pytest.mark.precision(kind="fp32")
def test_two_processes_train_like_one(tmp_path):
    common = ["-q", "train", "--epochs", "3", "--hidden", "32", "--latent-dim", "3", "--batch-size", "64",
              "--device", "cpu", "--precision", "fp32", "--no-report", "--set", "shards=2"]  # exact values: fp32
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "vaelab", *common, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "vaelab", *common, "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    rows = [[json.loads(s) for s in (tmp_path / r / "metrics.jsonl").read_text().splitlines()] for r in ("one", "two")]
    assert [r["epoch"] for r in rows[1]] == [1, 2, 3]
    for a, b in zip(*rows):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_elbo"] == pytest.approx(b["val_elbo"], rel=1e-5)
    wa, wb = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("one", "two"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)
    # and sharding really changed the data order: an unsharded run differs
    plain = subprocess.run([sys.executable, "-m", "vaelab", *common[:-2], "--out", str(tmp_path / "plain")],
                           env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    first = json.loads((tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["train_loss"] != pytest.approx(rows[0][0]["train_loss"], rel=1e-5)


def _free_port() -> int:
    with socket.socket() as s:  # the kernel's choice of a free port; released here, bound again by the launcher
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.precision(kind="fp32")
def test_two_nodes_of_two_processes_train_like_one_process(tmp_path):
    """Two torchrun launchers, two processes each, meeting at a c10d rendezvous on localhost as two nodes would:
    4 processes holding one shard each train like one process with shards = 4."""
    common = ["-q", "train", "--epochs", "2", "--hidden", "32", "--latent-dim", "3", "--batch-size", "64",
              "--device", "cpu", "--precision", "fp32", "--no-report", "--set", "shards=4"]
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "vaelab", *common, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    port = _free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "2",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nodes",
                               "-m", "vaelab", *common, "--out", str(tmp_path / "two")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        done = [node.communicate(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], [err[-2000:] for _, err in done]
    sessions = json.loads((tmp_path / "two" / "provenance.json").read_text())["sessions"]
    assert [s["processes"] for s in sessions] == [4]  # one run of four processes, not two runs of two
    rows = [[json.loads(s) for s in (tmp_path / r / "metrics.jsonl").read_text().splitlines()] for r in ("one", "two")]
    assert [r["epoch"] for r in rows[1]] == [1, 2]
    for a, b in zip(*rows):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_elbo"] == pytest.approx(b["val_elbo"], rel=1e-5)
    wa, wb = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("one", "two"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)
