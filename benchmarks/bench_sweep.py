"""Parallel sweeps timed in one run: 8 stacked models vs 1 model vs the same 8 one after another.

    python benchmarks/bench_sweep.py [--models 8] [--n 6000] [--epochs 2] [--rounds 3] [--device cpu]
                                     [--hidden 400] [--latent-dim 20] [--batch-size 128]

W1-like model by default (784-400-20, Bernoulli, Adam 1e-3, batch 128) on the first --n training
images of Fashion-MNIST (Debian's files, --data-dir or $VAELAB_DATA; synthetic 0/1 images of the
same size when none are found). The three ways train through the real code paths:
    one        session.fit, one model (seed 0)
    stacked    sweep_stacked.fit_group, --models models (seeds 0..M-1) as one stacked model
    sequential session.fit for each of the M models in turn
and each is timed by its runs' own `train_seconds` (the training loop only; validation and
checkpoint writes are outside it). Rounds alternate the three, so a noisy neighbour hurts all of
them alike; the medians over rounds are printed, with the ratios.

A second part times one training step of the stacked model, split into its phases (cutting and
binarizing the batches, forward + backward, the Adam step), for the two ways of running the
stacked networks: batched matmuls (what MLPs use) and torch.func.vmap (what other networks use),
next to one model's step. On a shared machine, `--threads 1 --cpu-time` gives the steadier
numbers: the process's own CPU time, which a neighbour's load barely moves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vaelab import models
from vaelab.config import schema as cfg
from vaelab.data import ImageData, binarize, rows
from vaelab.errors import DataError
from vaelab.estimators import objectives
from vaelab.runs import inputs
from vaelab.runtime.parallel import world_from_env
from vaelab.sweeps.stack import StackedAdam, stack_parameters, stacked_model
from vaelab.sweeps.stacked import fit_group
from vaelab.training import session
from vaelab.training.loop import make_optimizer


def load(c: cfg.Config, n: int) -> tuple[ImageData, str]:
    """The first n training images (and 1,000 validation images) of the config's data, or synthetic ones."""
    try:
        data, name = inputs.load_data(c), c.data
    except DataError:
        g = np.random.default_rng(c.seed)
        x = (g.random((n + 1000, 784)) < 0.3).astype(np.uint8)
        t = torch.from_numpy(x)
        data = ImageData("synthetic", (1, 28, 28), t[:n], t[n:], t[n:], None, None, None, 1.0)
        name = "synthetic 0/1 images (no Fashion-MNIST files found)"
    return dataclasses.replace(data, train=data.train[:n], val=data.val[:1000]), name


def seconds(run: Path) -> list[float]:
    return [json.loads(s)["train_seconds"] for s in (run / "metrics.jsonl").read_text().splitlines()]


def fit(c: cfg.Config, data: ImageData, **quiet) -> None:
    """One model trained as a sweep trains its groups of one: prepared, then fitted (training/session.py)."""
    session.fit(session.prepare(c, data, world_from_env()), data, **quiet)


def time_epochs(args, configs: list[cfg.Config], datas: list[ImageData], tmp: Path) -> dict[str, list[float]]:
    """Per-epoch training seconds of the three ways, over alternating rounds."""
    quiet = dict(progress=False, log=lambda s: None)
    out: dict[str, list[float]] = {"one": [], "stacked": [], "sequential": []}
    for r in range(args.rounds):
        one = tmp / f"one-{r}"
        one.mkdir()
        fit(configs[0].replace(out=str(one)), datas[0], **quiet)
        out["one"] += seconds(one)

        group = [c.replace(out=str(tmp / f"stacked-{r}-{i}")) for i, c in enumerate(configs)]
        for c in group:
            Path(c.out).mkdir()
        fit_group(group, datas, **quiet)
        out["stacked"] += seconds(Path(group[0].out))

        per_model = []
        for i, (c, d) in enumerate(zip(configs, datas)):
            run = tmp / f"seq-{r}-{i}"
            run.mkdir()
            fit(c.replace(out=str(run)), d, **quiet)
            per_model.append(seconds(run))
        out["sequential"] += [sum(col) for col in zip(*per_model)]  # the M models' epoch e, one after another
        print(f"  round {r + 1}: one {statistics.median(out['one'][-args.epochs:]):.3f} s/epoch, stacked "
              f"{statistics.median(out['stacked'][-args.epochs:]):.3f}, sequential "
              f"{statistics.median(out['sequential'][-args.epochs:]):.3f}", flush=True)
    return out


def time_step_phases(args, configs: list[cfg.Config], datas: list[ImageData], device: torch.device) -> None:
    """One stacked training step, phase by phase, for batched matmuls and vmap; and one model's step."""
    size, shape = len(configs), datas[0].shape
    built = []
    for c in configs:
        torch.manual_seed(c.seed)
        built.append(models.build(c, shape).to(device))
    train_x = datas[0].train.to(device)
    objective = objectives.get("sgvb-b")
    gens = [torch.Generator(device=device).manual_seed(i) for i in range(size)]
    clock = time.process_time if args.cpu_time else time.perf_counter
    tick = lambda: (torch.cuda.synchronize() if device.type == "cuda" else None) or clock()  # noqa: E731

    def stacked_step(net, adam, times):
        t0 = tick()
        idx = torch.randint(0, len(train_x), (size, args.batch_size), device=device)
        x = rows(train_x, idx.reshape(-1), datas[0].scale).view(size, args.batch_size, -1)
        x = torch.stack([binarize(x[m], gens[m]) for m in range(size)])
        t1 = tick()
        bound = objective(net, x)
        adam.zero_grad()
        (bound.loss * size).backward()
        t2 = tick()
        adam.step([True] * size)
        t3 = tick()
        times["batch"].append(t1 - t0), times["fwd+bwd"].append(t2 - t1), times["adam"].append(t3 - t2)

    def one_step(model, opt, times):
        t0 = tick()
        idx = torch.randint(0, len(train_x), (args.batch_size,), device=device)
        x = binarize(rows(train_x, idx, datas[0].scale), gens[0])
        t1 = tick()
        bound = objective(model, x)
        opt.zero_grad()
        bound.loss.backward()
        t2 = tick()
        opt.step()
        t3 = tick()
        times["batch"].append(t1 - t0), times["fwd+bwd"].append(t2 - t1), times["adam"].append(t3 - t2)

    ways = {}
    for how in ("bmm", "vmap"):
        params = stack_parameters(built)
        ways[f"stacked x{size} ({how})"] = (
            stacked_step,
            stacked_model(built[0], params, how),
            StackedAdam(params, [c.lr for c in configs], make_optimizer(built[0], 1e-3)),
        )
    ways["one model"] = (one_step, built[0], make_optimizer(built[0], 1e-3))
    times = {k: {"batch": [], "fwd+bwd": [], "adam": []} for k in ways}
    for _ in range(args.step_rounds):  # alternate the ways, 20 steps each, a few warm-up rounds dropped below
        for k, (step, net, opt) in ways.items():
            for _ in range(20):
                step(net, opt, times[k])
    what = "process CPU time" if args.cpu_time else "wall time"
    print(f"\none training step, median ms of {what} over {args.step_rounds - 2} x 20 steps (first 2 rounds dropped):")
    print(f"  {'':<24} {'batch':>8} {'fwd+bwd':>8} {'adam':>8} {'total':>8}")
    for k, t in times.items():
        med = {p: statistics.median(v[40:]) * 1e3 for p, v in t.items()}
        print(f"  {k:<24} {med['batch']:8.2f} {med['fwd+bwd']:8.2f} {med['adam']:8.2f} {sum(med.values()):8.2f}")
    params = sum(p.numel() for p in built[0].parameters())
    gflop = 6 * args.batch_size * params * size / 1e9  # ~2 flop per weight per example, x3 for the backward
    print(f"  arithmetic of one stacked step: ~{gflop:.2f} GFLOP ({params:,} weights per model)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--n", type=int, default=6000, help="training images per epoch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--step-rounds", type=int, default=8)
    p.add_argument("--hidden", default="400")
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time the steps in process CPU time (steadier than wall time on a busy machine; "
                        "use --threads 1)")
    p.add_argument("--skip-epochs", action="store_true", help="only the per-step part")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    base = cfg.from_dict({"data": args.data, "data_dir": args.data_dir, "hidden": args.hidden,
                          "latent_dim": args.latent_dim, "batch_size": args.batch_size, "lr": 1e-3,
                          "epochs": args.epochs, "device": args.device})
    configs = [base.replace(seed=s) for s in range(args.models)]
    loaded = [load(c, args.n) for c in configs]
    datas, name = [d for d, _ in loaded], loaded[0][1]
    print(f"vaelab sweep benchmark: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}")
    print(f"model in-{args.hidden}-{args.latent_dim} Bernoulli, batch {args.batch_size}, "
          f"{len(datas[0].train)} images per epoch of {name}; "
          f"{args.models} models, {args.epochs} epochs x {args.rounds} rounds")
    if not args.skip_epochs:
        with tempfile.TemporaryDirectory() as tmp:
            out = time_epochs(args, configs, datas, Path(tmp))
        med = {k: statistics.median(v) for k, v in out.items()}
        print(f"\nseconds per epoch (median over {len(out['one'])} epochs):")
        print(f"  1 model                      {med['one']:8.3f}")
        print(f"  {args.models} models stacked             {med['stacked']:8.3f}   "
              f"{med['stacked'] / med['one']:5.2f}x one model")
        print(f"  {args.models} models one after another   {med['sequential']:8.3f}   "
              f"{med['sequential'] / med['one']:5.2f}x one model")
        print(f"  stacking speed-up over one after another: {med['sequential'] / med['stacked']:.2f}x")
    time_step_phases(args, configs, datas, device)


if __name__ == "__main__":
    main()
