"""Data-parallel training: split noise, sharded batches, and 2 processes (on one node or two) matching 1 (gloo, CPU)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from paths import ROOT
from safetensors import safe_open
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


def _worker(launcher: subprocess.Popen, rank: int, timeout: float = 120.0) -> int:
    """The pid of the worker of `rank` that the torchrun launcher started (read from its environment in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{launcher.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                try:
                    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if f"RANK={rank}".encode() in env:
                    return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"no worker of rank {rank}")


@pytest.mark.precision(kind="fp32")
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through /proc")
def test_a_killed_rank_leaves_a_run_that_resumes_like_an_uninterrupted_one(tmp_path):
    """SIGKILL rank 1 of a 2-process training once a checkpoint is written; torchrun ends rank 0; `train --resume`
    under torchrun (2 processes) then ends with the weights, checkpoint and metrics of an uninterrupted 2-process run,
    bit for bit (but the seconds and the provenance)."""
    epochs = 25
    common = ["-q", "train", "--epochs", str(epochs), "--hidden", "32", "--latent-dim", "3", "--batch-size", "64",
              "--device", "cpu", "--precision", "fp32", "--no-report"]
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vaelab"]
    whole = subprocess.run([*torchrun, *common, "--out", str(tmp_path / "whole")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]

    run = tmp_path / "killed"
    launcher = subprocess.Popen([*torchrun, *common, "--out", str(run)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        victim = _worker(launcher, 1)
        deadline = time.monotonic() + 120
        while not ((run / "checkpoint.safetensors").exists() and (run / "metrics.jsonl").exists()
                   and len((run / "metrics.jsonl").read_text().splitlines()) >= 2):  # at least epoch 1 committed
            assert launcher.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
            time.sleep(0.02)
        os.kill(victim, signal.SIGKILL)
        _, err = launcher.communicate(timeout=120)  # torchrun ends rank 0 itself
    finally:
        launcher.kill()
    assert launcher.returncode != 0
    assert "Signal 9 (SIGKILL)" in err or "SIGKILL" in err, err[-2000:]
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert 1 <= done < epochs  # killed mid-run

    resumed = subprocess.run([*torchrun, "-q", "train", "--resume", str(run)], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    sessions = json.loads((run / "provenance.json").read_text())["sessions"]
    assert [s["processes"] for s in sessions] == [2, 2] and sessions[1]["first_epoch"] > 1
    rows = [[{k: v for k, v in json.loads(s).items() if k != "train_seconds"}
             for s in (r / "metrics.jsonl").read_text().splitlines()] for r in (tmp_path / "whole", run)]
    assert len(rows[1]) == epochs and rows[0] == rows[1]
    for file in ("model.safetensors", "checkpoint.safetensors"):
        with safe_open(str(tmp_path / "whole" / file), "pt") as a, safe_open(str(run / file), "pt") as b:
            assert a.keys() == b.keys() and a.metadata() == b.metadata(), file
            for k in a.keys():
                assert torch.equal(a.get_tensor(k), b.get_tensor(k)), (file, k)
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


def test_under_torchrun_the_first_process_of_a_node_prints_the_error_line(monkeypatch, capsys):
    from vaelab.cli.main import run as cli

    for local, lines in (("1", 0), ("0", 1)):
        monkeypatch.setenv("LOCAL_RANK", local)
        assert cli(["train", "--epochs", "1", "--set", "shards=-1", "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err.count("vaelab: error:") == lines, err


@pytest.mark.parametrize("args, words", [
    (["--set", "shards=3"], "shards = 3 must be a multiple of the 2 processes"),
    (["--data", "npz:ROWS", "--set", "val_fraction=0"],
     "the training split (1 rows) is too small for batch_size 32 in 2 shards"),  # fewer rows than processes
])
def test_bad_settings_under_torchrun_give_one_error_line_and_write_nothing(tmp_path, args, words):
    """What the user sees: one `vaelab: error:` line (process 0's), torchrun's own report naming exit code 2, torchrun
    exiting 1; no run folder; every process gone (the timeout)."""
    import numpy as np

    np.savez(tmp_path / "rows.npz", x_train=np.full((1, 8), 0.5, np.float32), x_test=np.full((2, 8), 0.5, np.float32))
    args = [a.replace("ROWS", str(tmp_path / "rows.npz")) for a in args]
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "vaelab", "-q", "train", "--epochs", "1", "--device", "cpu", *args,
                        "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert [s for s in p.stderr.splitlines() if "vaelab: error:" in s] == [f"vaelab: error: {words}"]
    assert "exitcode  : 2" in p.stderr  # the root cause torchrun reports: a worker's exit code 2
    assert not (tmp_path / "run").exists()
