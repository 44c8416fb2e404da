"""A sweep under torchrun: each process trains its share of the models; the folder is a one-process sweep's."""

import json
import os
import subprocess
import sys

import pytest
import torch
from paths import ROOT
from safetensors import safe_open

from vaelab.distributions import families
from vaelab.runtime import split_noise
from vaelab.sweeps.share import share

SRC = str(ROOT / "src")


def test_share_gives_whole_groups_or_splits_them_when_they_are_fewer_than_the_processes():
    parts = [[0, 1, 2], [3], [4, 5]]
    # enough groups: whole ones, the largest first to the least loaded process
    assert share(parts, 1) == [[(0, [0, 1, 2]), (1, [3]), (2, [4, 5])]]
    assert share(parts, 2) == [[(0, [0, 1, 2])], [(1, [3]), (2, [4, 5])]]
    assert share(parts, 3) == [[(0, [0, 1, 2])], [(2, [4, 5])], [(1, [3])]]
    # fewer groups than processes: the group with the most models per process is cut first, into contiguous pieces
    assert share([[0, 1, 2, 3]], 2) == [[(0, [0, 1])], [(0, [2, 3])]]
    assert share([[0, 1], [2, 3]], 3) == [[(0, [0])], [(0, [1])], [(1, [2, 3])]]
    assert share([[0, 1, 2], [3]], 4) == [[(0, [0])], [(0, [1])], [(0, [2])], [(1, [3])]]
    # more processes than models: the last ones train nothing; every model exactly once
    assert share([[0, 1], [2]], 5) == [[(0, [0])], [(0, [1])], [(1, [2])], [], []]
    for n in range(1, 9):
        held = [i for pieces in share(parts, n) for _, piece in pieces for i in piece]
        assert sorted(held) == list(range(6))


@pytest.mark.parametrize("kind", sorted(families.POSTERIORS))
def test_a_share_of_a_stacked_group_draws_its_models_noise_of_the_whole_group(kind):
    loc, scale = torch.randn(4, 5, 3), torch.rand(4, 5, 3) + 0.5  # (M, B, Dz): 4 stacked models
    q = families.location_scale(kind, loc, scale)
    torch.manual_seed(7)
    whole = split_noise.rsample(q, 2)  # (K, M, B, Dz)
    u = split_noise.uniform((4, 5, 3), device=torch.device("cpu"), dtype=torch.float32)
    for held in ([1, 3], [0], [2, 3]):
        part = families.location_scale(kind, loc[held], scale[held])
        torch.manual_seed(7)
        with split_noise.stacked_members(4, held):
            assert torch.equal(split_noise.rsample(part, 2), whole[:, held])
            assert torch.equal(split_noise.uniform((len(held), 5, 3), device=torch.device("cpu"),
                                                   dtype=torch.float32), u[held])


def _tensors(path):
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.mark.precision(kind="fp32")  # stacked groups train in fp32
def test_three_processes_sweep_like_one(tmp_path):
    """2 groups of 2 models on 3 processes: group 0 is split (one model each on processes 0 and 1, trained as in
    their group of 2), group 1 trains whole on process 2. Every model's weights, checkpoint and metrics must equal
    the one-process sweep's bit for bit (the models never talk), and sweep.json too, but for the seconds."""
    common = ["-q", "sweep", "--seeds", "2", "--grid", "latent_dim=2,3", "--epochs", "2", "--hidden", "32",
              "--batch-size", "64", "--device", "cpu", "--set", "eval_k=10", "--no-explorer"]
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "vaelab", *common, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    three = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3",
                            "-m", "vaelab", *common, "--out", str(tmp_path / "three")],
                           env=env, capture_output=True, text=True, timeout=300)
    assert three.returncode == 0, three.stderr[-3000:]
    assert three.stdout.count("sweep folder:") == 1  # process 0 alone prints
    names = sorted(p.name for p in (tmp_path / "one").iterdir() if p.is_dir())
    assert len(names) == 4
    for name in names:
        a, b = tmp_path / "one" / name, tmp_path / "three" / name
        assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
        for file in ("model.safetensors", "checkpoint.safetensors"):
            (ta, ma), (tb, mb) = _tensors(a / file), _tensors(b / file)
            assert ta.keys() == tb.keys() and ma == mb, (name, file)
            for k in ta:
                assert torch.equal(ta[k], tb[k]), (name, file, k)
        rows = [[{k: v for k, v in json.loads(s).items() if k != "train_seconds"}
                 for s in (r / "metrics.jsonl").read_text().splitlines()] for r in (a, b)]
        assert rows[0] == rows[1] and len(rows[0]) == 2, name
        assert json.loads((a / "eval.json").read_text())["elbo"] == json.loads((b / "eval.json").read_text())["elbo"]
        assert json.loads((b / "provenance.json").read_text())["sessions"][0]["processes"] == 1  # trained alone
    summaries = [json.loads((tmp_path / r / "sweep.json").read_text())["runs"] for r in ("one", "three")]
    for s in summaries:
        for run in s:
            run.pop("group_seconds")
    assert summaries[0] == summaries[1]
    assert [r["test"]["elbo"] for r in summaries[1]] and all(r["epochs"] == 2 for r in summaries[1])
