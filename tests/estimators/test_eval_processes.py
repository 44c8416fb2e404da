"""Sharded evaluation: `torchrun --nproc_per_node N -m vaelab evaluate RUN` gives one process's numbers, bit for bit.

Each process scores a contiguous run of the chunks one process would score (evaluation.share), with point p's
draws from its stream under its index in the whole split (runtime/streams.py), and the per-point results are
gathered. A draw indexed by the point's place in its process's share would give process 1 the draws of
process 0's points: the means would move, and the equality below would fail.
A document model's run (NVDM, ProdLDA, ETM on a corpus) goes the same way: its bounds, its perplexities and its
topic scores (NPMI, diversity, purity; every process computes them whole) equal one process's.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from corpora import two_topic_lines, write_tsv
from paths import ROOT
from torchrun_launch import one, torchrun

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


def _ragged_corpus(root):
    """120 two-topic documents of 10 to 24 words (so per-document and corpus perplexity differ): 24 test documents."""
    lines = []
    for i, line in enumerate(two_topic_lines(120)):
        words, *rest = line.split("\t")
        lines.append("\t".join([" ".join(words.split()[:10 + i % 15]), *rest]))
    return write_tsv(root, lines)


@pytest.mark.precision(kind="fp32")
@pytest.mark.parametrize("model", ["nvdm", "prodlda", "etm"])
def test_two_processes_evaluate_a_document_model_like_one(tmp_path, model):
    pytest.importorskip("sklearn")
    corpus = _ragged_corpus(tmp_path / "corpus")
    run = vaelab.train(data=f"corpus:{corpus}", model=model, hidden=(16,), latent_dim=3, batch_size=16, epochs=2,
                       lr=2e-2, device="cpu", precision="fp32", out=tmp_path / "run", finish=False, log=lambda s: None)
    # 24 test documents in chunks of 5: process 0 scores documents 0-9, process 1 documents 10-23
    args = ["-m", "vaelab", "evaluate", str(run), "--k", "50", "--batch", "5", "--device", "cpu"]
    ref = one(args)
    assert ref.returncode == 0, ref.stderr
    first = json.loads((run / "evals" / "test-k50.json").read_text())
    (run / "evals" / "test-k50.json").unlink()
    two = torchrun(2, args)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("nats per example") == 1 and "2 processes" in two.stdout
    second = json.loads((run / "evals" / "test-k50.json").read_text())
    assert second.pop("processes") == 2
    assert first["n"] == 24 and first["nll"] > 0 and first["perplexity"] != first["perplexity_doc"]
    bounds = ("elbo", "iwae", "nll", "recon", "kl", "perplexity", "perplexity_doc", "perplexity_is")
    topics = ("npmi", "diversity", "purity", "unigram_perplexity", "words", "active_units")
    for key in bounds + topics:  # bit for bit: the same chunks, each point's draws under its index in the split
        assert first[key] == second[key], (key, first[key], second[key])
    timing = ("seconds",)
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in second.items() if k not in timing}
