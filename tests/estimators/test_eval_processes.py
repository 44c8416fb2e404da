"""Sharded evaluation: `torchrun --nproc_per_node N -m vaelab evaluate RUN` gives one process's numbers, bit for bit.

Each process scores a contiguous run of the chunks one process would score (evaluation.share), with point p's
draws from its stream under its index in the whole split (runtime/streams.py), and the per-point results are
gathered. A draw indexed by the point's place in its process's share would give process 1 the draws of
process 0's points: the means would move, and the equality below would fail.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from paths import ROOT

import vaelab
from vaelab.estimators import evaluation
from vaelab.runs import inputs, loading
from vaelab.runs.resolve import resolve
from vaelab.runtime.parallel import World

SRC = str(ROOT / "src")


@pytest.mark.parametrize("n, batch, size", [(359, 40, 2), (359, 40, 3), (7, 3, 5), (100, 100, 2)])
def test_the_shares_are_the_chunks_of_one_process_each_held_once(n, batch, size):
    one = list(evaluation.share(n, batch, World()))
    assert one == list(range(0, n, batch))
    shares = [list(evaluation.share(n, batch, World(rank, size))) for rank in range(size)]
    assert sum(shares, []) == one  # contiguous, in rank order, every chunk once
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced to one chunk


# run under torchrun: every process's point_bounds of the whole test split, saved by each (per point, in order)
POINTS = """
import sys, numpy as np, torch
from vaelab.estimators import evaluation
from vaelab.runs import inputs, loading
from vaelab.runs.resolve import resolve
from vaelab.runtime import parallel
run, out = sys.argv[1:]
world = parallel.world_from_env()
c = loading.load_config(run)
data = inputs.load_data(c)
r = resolve(c, data.scale, parallel.join(world, torch.device("cpu")))
model, _ = loading.load_weights_of(c, run, data.shape, r.device)
pb = evaluation.point_bounds(model, inputs.eval_inputs(r, data, "test", r.device), 30, batch=40, world=world)
np.savez(f"{out}-{world.rank}.npz", **vars(pb))
parallel.leave()
"""


def _env():
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")


def _small_run(path):
    return vaelab.train(data="digits", hidden=(32,), latent_dim=3, batch_size=64, epochs=2, device="cpu",
                        precision="fp32", out=path, finish=False, log=lambda s: None)


@pytest.mark.precision(kind="fp32")
def test_every_process_holds_every_points_bounds_of_one_process(tmp_path):
    run = _small_run(tmp_path / "run")
    script = tmp_path / "points.py"
    script.write_text(POINTS)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(run), str(tmp_path / "pb")], env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    c = loading.load_config(run)
    data = inputs.load_data(c)
    x = inputs.eval_inputs(resolve(c, data.scale, torch.device("cpu")), data, "test", torch.device("cpu"))
    model, _ = loading.load_weights_of(c, run, data.shape, torch.device("cpu"))
    one = evaluation.point_bounds(model, x, 30, batch=40)  # 9 chunks: points 0-159 on process 0, 160-358 on 1
    for rank in (0, 1):
        got = np.load(tmp_path / f"pb-{rank}.npz")
        for name in ("elbo", "iwae", "recon", "kl", "means"):
            assert np.array_equal(got[name], getattr(one, name)), (rank, name)  # bit for bit, point by point


@pytest.mark.precision(kind="fp32")
def test_two_processes_evaluate_like_one(tmp_path):
    run = _small_run(tmp_path / "run")
    env = _env()
    # 359 test points in chunks of 40: process 0 scores points 0-159, process 1 points 160-358
    args = ["-m", "vaelab", "evaluate", str(run), "--k", "30", "--batch", "40", "--device", "cpu"]
    one = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    first = json.loads((run / "evals" / "test-k30.json").read_text())
    (run / "evals" / "test-k30.json").unlink()
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *args], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("nats per example") == 1 and "2 processes" in two.stdout  # process 0 alone reports
    second = json.loads((run / "evals" / "test-k30.json").read_text())
    assert second.pop("processes") == 2
    timing = ("seconds",)
    assert first["n"] == 359 and first["nll"] > 0
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in second.items() if k not in timing}
    assert json.loads((run / "eval.json").read_text()) == second | {"processes": 2}  # process 0 chose it as eval.json
