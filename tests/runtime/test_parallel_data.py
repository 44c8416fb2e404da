"""Sharded streamed npy: rows and sharded corpora: N gloo processes train like one process with shards = N.

Each process reads only its own shards' rows (StreamedBatches: contiguous ranges of the file's training rows;
ResidentBatches on word counts: a CSR slice of the rows i % shards it holds). The torchrun tests record, in
every process, which rows it read (NpyRows.read, the CSR slice), and check that the processes' rows are
disjoint and cover the training split, besides the numbers. ProdLDA and the ETM draw dropout masks and batch
statistics of the whole batch (split_noise.dropout, ShiftedBatchNorm summed over the processes), checked here
against one process's nn.Dropout and nn.BatchNorm1d.
"""

import json
import math

import numpy as np
import pytest
import torch
from corpora import two_topic_lines, write_tsv
from safetensors.torch import load_file
from torch import nn
from torchrun_launch import one, torchrun

from vaelab.cli.main import run as cli
from vaelab.data import load_images, rows
from vaelab.data.npy import NpyRows
from vaelab.models.networks import BatchDropout
from vaelab.runtime import split_noise
from vaelab.training.batches import ResidentBatches, StreamedBatches, order_generator

CPU = torch.device("cpu")


def _write_npy(root, n=250, d=16, test=20):
    """x_train.npy whose columns 0 and 1 name the row (row = x0 + 256 x1), and x_test.npy."""
    root.mkdir(exist_ok=True)
    x = np.zeros((n, d), dtype=np.uint8)
    x[:, 0], x[:, 1] = np.arange(n) % 256, np.arange(n) // 256
    x[:, 2:] = np.random.default_rng(0).integers(0, 256, (n, d - 2))
    np.save(root / "x_train.npy", x)
    np.save(root / "x_test.npy", x[:test])
    return root


def _ids(batch: torch.Tensor) -> list[int]:
    return (batch[:, 0].long() + 256 * batch[:, 1].long()).tolist()


def _old_stream(source: NpyRows, batch: int, seed: int, epoch: int, chunk_rows: int):
    """The unsharded stream as batches.py wrote it before shards existed (chunk order, then rows within each)."""
    g = order_generator(seed, epoch, 0, CPU)
    chunk_rows = max(chunk_rows, batch)
    pool = np.zeros((0, source.dim), dtype=np.uint8)
    for c in torch.randperm(math.ceil(source.file_rows / chunk_rows), generator=g).tolist():
        block = source.read(c * chunk_rows, (c + 1) * chunk_rows)
        pool = np.concatenate([pool, block[torch.randperm(len(block), generator=g).numpy()]])
        while len(pool) >= batch:
            yield pool[:batch]
            pool = pool[batch:]
    if len(pool):
        yield pool


def test_unsharded_streamed_batches_are_unchanged(tmp_path):
    data = load_images(f"npy:{_write_npy(tmp_path / 'd', n=1000)}", val_fraction=0.1)
    for shards in (0, 1):
        source = StreamedBatches(data.train, 32, seed=4, device=CPU, chunk_rows=70, shards=shards)
        for epoch in (1, 2):
            got = [_ids(b) for b, _ in source.epoch(epoch)]
            assert got == [_ids(torch.from_numpy(b)) for b in _old_stream(data.train, 32, 4, epoch, 70)]
            assert len(got) == source.steps == 29 and len(got[-1]) == 900 - 28 * 32  # the last batch ragged


@pytest.mark.parametrize("shards", [2, 4])
def test_streamed_shards_held_apart_give_the_batches_of_shards_held_together(tmp_path, monkeypatch, shards):
    # validation: every 10th file row among the first 300 (as MAX_VAL caps it in a large file), so the shards'
    # ranges of training rows are not equal ranges of file rows
    source = NpyRows(_write_npy(tmp_path / "d", n=1000) / "x_train.npy", val_every=10, val_rows=30)
    train_ids = [i for i in range(1000) if i >= 300 or i % 10 != 9]
    n, per = len(train_ids), 32 // shards
    assert len(source) == n == 970
    # shard s: training rows [s n / S, (s + 1) n / S), the independent answer
    expected = [set(train_ids[s * n // shards:(s + 1) * n // shards]) for s in range(shards)]
    whole = StreamedBatches(source, 32, seed=3, device=CPU, chunk_rows=50, shards=shards)
    parts = [StreamedBatches(source, 32, seed=3, device=CPU, chunk_rows=50, shards=shards, held=[s])
             for s in range(shards)]
    assert whole.steps == (n // shards) // per and whole.rows_per_epoch() == whole.steps * 32
    reads: list[tuple[int, int]] = []
    read = NpyRows.read
    monkeypatch.setattr(NpyRows, "read", lambda self, a, b: reads.append((a, b)) or read(self, a, b))
    orders, read_by = [], [set() for _ in range(shards)]
    for epoch in (1, 2):
        held_apart = []
        for s, part in enumerate(parts):
            reads.clear()
            held_apart.append([b for b, _ in part.epoch(epoch)])
            read_by[s] |= {i for a, b in reads for i in range(a, b)}
            assert all(b - a <= 50 for a, b in reads)  # a chunk at a time
        batches = [b for b, _ in whole.epoch(epoch)]
        assert len(batches) == whole.steps
        for j, batch in enumerate(batches):
            assert torch.equal(batch, torch.cat([held_apart[s][j] for s in range(shards)]))
            for s in range(shards):  # shard-major: rows s * per ... of every batch come from shard s
                assert set(_ids(batch[s * per:(s + 1) * per])) <= expected[s]
        seen = sum((_ids(b) for b in batches), [])
        assert len(seen) == len(set(seen)) == whole.steps * 32  # no row twice in an epoch
        orders.append(seen)
    assert orders[0] != orders[1]
    for s in range(shards):  # each shard reads its own contiguous range of the file, and all of it
        assert {i for i in read_by[s] if i >= 300 or i % 10 != 9} == expected[s]
        assert read_by[s] == set(range(min(read_by[s]), max(read_by[s]) + 1))
    assert sum(map(len, read_by)) == len(set().union(*read_by)) == 1000  # disjoint, the whole file


def test_corpus_shards_are_csr_row_slices():
    pytest.importorskip("sklearn")
    from vaelab.data.corpus import build

    lines = two_topic_lines(80)
    data = build("c", [t.split("\t")[0] for t in lines], [t.split("\t")[1] for t in lines], None)
    dense = data.train.to_dense()  # (48, |V|)
    n = len(dense)
    for shards, held in [(2, [0]), (2, [1]), (2, [0, 1]), (3, [1, 2])]:
        sparse = ResidentBatches(data.train, 12, seed=1, device=CPU, shards=shards, held=held)
        assert sparse.storage.layout == torch.sparse_csr
        assert torch.equal(sparse.storage.to_dense(), torch.cat([dense[s::shards] for s in held]))
        ref = ResidentBatches(dense, 12, seed=1, device=CPU, shards=shards, held=held)
        for (a, ia), (b, ib) in zip(sparse.epoch(1), ref.epoch(1)):
            assert torch.equal(rows(a, ia, 1.0), rows(b, ib, 1.0))
    one_shard = ResidentBatches(data.train, 12, seed=1, device=CPU)
    assert one_shard.storage is data.train and n == 48  # unsharded: the stored tensor itself, as before


def test_split_dropout_is_a_slice_of_the_whole_batch_mask():
    x = torch.rand(3, 8, 5) + 0.5  # (K, B, F): rows on dim -2
    torch.manual_seed(0)
    whole = nn.Dropout(0.4).train()(x)
    after = torch.get_rng_state()
    torch.manual_seed(0)
    assert torch.equal(BatchDropout(0.4).train()(x), whole)  # one process: nn.Dropout's numbers
    for part in range(2):
        torch.manual_seed(0)
        with split_noise.split_batch(2, part):
            got = BatchDropout(0.4).train()(x[:, 4 * part:4 * part + 4])
        assert torch.equal(got, whole[:, 4 * part:4 * part + 4])
        assert torch.equal(torch.get_rng_state(), after)  # each process drew the whole batch's mask: in step


# run under torchrun: ShiftedBatchNorm on this process's half of a (K, B, n) batch; output, gradients, statistics
BATCH_NORM = """
import sys, numpy as np, torch
from vaelab.models.networks import ShiftedBatchNorm
from vaelab.runtime import parallel, split_noise
world = parallel.world_from_env()
parallel.join(world, torch.device("cpu"))
torch.manual_seed(0)
h, w = torch.randn(3, 8, 5) * 2 + 1, torch.randn(3, 8, 5)
bn = ShiftedBatchNorm(5)
rows = slice(4 * world.rank, 4 * world.rank + 4)
mine = h[:, rows].clone().requires_grad_()
for step in range(2):
    mine.grad = bn.shift.grad = None
    with split_noise.split_batch(2, world.rank):
        y = bn(mine)
    (y * w[:, rows]).sum().backward()
shift_grad = parallel.summed(bn.shift.grad)
np.savez(f"{sys.argv[1]}-{world.rank}.npz", y=y.detach().numpy(), grad=mine.grad.numpy(), shift_grad=shift_grad.numpy(),
         mean=bn.norm.running_mean.numpy(), var=bn.norm.running_var.numpy(), count=bn.norm.num_batches_tracked.numpy())
parallel.leave()
"""


def test_batch_norm_over_processes_is_one_process_batch_norm(tmp_path):
    script = tmp_path / "bn.py"
    script.write_text(BATCH_NORM)
    two = torchrun(2, [str(script), str(tmp_path / "bn")])
    assert two.returncode == 0, two.stderr[-2000:]
    from vaelab.models.networks import ShiftedBatchNorm

    torch.manual_seed(0)
    h, w = torch.randn(3, 8, 5) * 2 + 1, torch.randn(3, 8, 5)
    bn = ShiftedBatchNorm(5)
    x = h.clone().requires_grad_()
    for _ in range(2):
        x.grad = bn.shift.grad = None
        y = bn(x)  # nn.BatchNorm1d over the 24 rows
        (y * w).sum().backward()
    for rank in (0, 1):
        got = np.load(tmp_path / f"bn-{rank}.npz")
        rows = slice(4 * rank, 4 * rank + 4)
        np.testing.assert_allclose(got["y"], y[:, rows].detach().numpy(), rtol=0, atol=1e-5)
        # the gradient reaches each half through the other half's rows too (the shared mean and variance)
        np.testing.assert_allclose(got["grad"], x.grad[:, rows].numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(got["shift_grad"], bn.shift.grad.numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(got["mean"], bn.norm.running_mean.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got["var"], bn.norm.running_var.numpy(), rtol=1e-6)  # unbiased, over 24 rows
        assert int(got["count"]) == 2


# vaelab's command line in one process or under torchrun, recording the training rows this process read:
# [start, stop) file rows of every NpyRows.read, and the rows of every CSR/dense shard slice
RECORDED = """
import json, os, sys
from vaelab.cli.main import run
from vaelab.data.npy import NpyRows
from vaelab.training import batches
touched = []
read, take = NpyRows.read, batches.take_rows
def recording_read(self, start, stop):
    touched.extend(range(start, min(stop, self.file_rows)))
    return read(self, start, stop)
def recording_take(stored, idx):
    touched.extend(idx.tolist())
    return take(stored, idx)
NpyRows.read, batches.take_rows = recording_read, recording_take
code = run(sys.argv[2:])
with open(f"{sys.argv[1]}-{os.environ.get('RANK', 'one')}.json", "w") as f:
    json.dump(touched, f)
sys.exit(code)
"""


def _train_both(tmp_path, n: int, args: list[str]):
    """The same training in one process with shards = n and in n processes: (rows each process read,
    metrics of each run, weights of each run)."""
    script = tmp_path / "recorded.py"
    script.write_text(RECORDED)
    common = ["-q", "train", "--device", "cpu", "--precision", "fp32", "--no-report", "--set", f"shards={n}", *args]
    ref = one([str(script), str(tmp_path / "rows"), *common, "--out", str(tmp_path / "one")])
    assert ref.returncode == 0, ref.stderr
    many = torchrun(n, [str(script), str(tmp_path / "rows"), *common, "--out", str(tmp_path / "many")])
    assert many.returncode == 0, many.stderr[-2000:]
    touched = [set(json.loads((tmp_path / f"rows-{r}.json").read_text())) for r in [*range(n), "one"]]
    metrics = [[json.loads(line) for line in (tmp_path / r / "metrics.jsonl").read_text().splitlines()]
               for r in ("one", "many")]
    weights = [load_file(str(tmp_path / r / "model.safetensors")) for r in ("one", "many")]
    return touched, metrics, weights


def _disjoint_and_whole(touched: list[set[int]], whole: set[int]) -> None:
    """Every process read rows of its own (no row by two), together every row, as the one process did."""
    *ranks, ref = touched
    assert all(ranks) and sum(map(len, ranks)) == len(set().union(*ranks))
    assert set().union(*ranks) == ref == whole


@pytest.mark.precision(kind="fp32")
@pytest.mark.parametrize("n", [2, 4])
def test_processes_stream_their_own_rows_and_train_like_one_process(tmp_path, n):
    data = _write_npy(tmp_path / "d")  # 250 rows, 25 of them validation: 225 training rows
    touched, (a, b), (wa, wb) = _train_both(tmp_path, n, ["--data", f"npy:{data}", "--epochs", "2", "--hidden",
                                                          "16", "--latent-dim", "2", "--batch-size", "32"])
    _disjoint_and_whole(touched, set(range(250)))  # whole file rows: validation rows lie inside the ranges
    assert [r["epoch"] for r in b] == [1, 2]
    for ra, rb in zip(a, b):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5)
        assert ra["val_elbo"] == pytest.approx(rb["val_elbo"], rel=1e-5)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


# ProdLDA's encoder biases before batch norm (and the running means that follow them) get a gradient that is zero
# but for rounding, which Adam scales up to steps of size lr: they follow the rounding, in one process as in two
NULL_SPACE = {"encoder.mean.bias", "encoder.logvar.bias", "encoder.mean_bn.norm.running_mean",
              "encoder.logvar_bn.norm.running_mean"}


@pytest.mark.precision(kind="fp32")
@pytest.mark.parametrize("model", ["nvdm", "prodlda", "etm"])
def test_processes_hold_their_own_documents_and_train_like_one_process(tmp_path, model):
    corpus = write_tsv(tmp_path / "corpus", two_topic_lines(80))  # 48 training documents
    extra = ["--set", "batch_norm=false"] if model == "etm" else []  # etm: dropout alone; prodlda: both
    touched, (a, b), (wa, wb) = _train_both(tmp_path, 2, ["--data", f"corpus:{corpus}", "--model", model, "--epochs",
                                                          "2", "--hidden", "16", "--latent-dim", "2", "--batch-size",
                                                          "16", "--lr", "2e-2", *extra])
    _disjoint_and_whole(touched, set(range(48)))
    assert touched[0] == set(range(0, 48, 2))  # row i in shard i % 2
    for ra, rb in zip(a, b):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5)
        # batch norm in eval mode reads the running means those biases moved (0.3% apart when measured)
        assert ra["val_elbo"] == pytest.approx(rb["val_elbo"], rel=1e-2 if model == "prodlda" else 1e-5)
    for k in wa:
        if not (model == "prodlda" and k in NULL_SPACE):
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


def test_streamed_shards_that_cannot_be_built_are_refused_before_anything_is_written(tmp_path, capsys):
    data = _write_npy(tmp_path / "d", n=30)  # 27 training rows
    common = ["-q", "train", "--data", f"npy:{data}", "--device", "cpu", "--epochs", "1"]
    for flags, message in [(["--batch-size", "32", "--set", "shards=32"], "too small for batch_size 32 in 32 shards"),
                           (["--batch-size", "30", "--set", "shards=4"], "batch_size 30 must divide evenly into 4")]:
        out = tmp_path / "run"
        assert cli([*common, *flags, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vaelab: error: ") and message in err[0], err
        assert not out.exists()
    write_tsv(tmp_path / "c", two_topic_lines(20))  # 12 training documents
    assert cli(["-q", "train", "--data", f"corpus:{tmp_path / 'c'}", "--model", "nvdm", "--batch-size", "16",
                "--set", "shards=16", "--out", str(tmp_path / "c-run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the training split (12 rows) is too small for batch_size 16 in 16 shards" in err[0]
    assert not (tmp_path / "c-run").exists()
