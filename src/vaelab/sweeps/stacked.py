"""One stacked sweep group: M same-shaped models trained as one (sweeps/stack.py), each written as its solo run.

Each model starts as its solo run would (seeded, built, then its own random stream), sees its solo
run's batches in its solo run's order, and ends every epoch through its own EpochWriter (training/epochs.py),
so its run folder holds exactly the files and numbers `vaelab train` writes.

Under torchrun a group may be shared out among processes (sweeps/share.py): each trains some of its models
(`positions` in the whole group of `group_seeds`), seeded as the whole group and drawing the whole group's noise
(runtime/split_noise.py stacked_members), so every model's numbers are those of the whole group trained in one process.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from typing import Callable, Sequence

import numpy as np
import torch

from .. import models
from ..config import schema as cfg
from ..data import ImageData, binarize, dequantize, is_corpus_spec, rows
from ..errors import ConfigError, VaelabError
from ..estimators import objectives
from ..logs import info, progress_bar
from ..runs import inputs, metrics
from ..runs.folder import RunFolder
from ..runs.json_text import dumps
from ..runs.resolve import resolve
from ..runtime import split_noise
from ..training.batches import order_generator
from ..training.epochs import EpochOutput, EpochWriter
from ..training.loop import _sync, _write, kl_weight, make_optimizer, seed_everything
from . import stack


def check_stackable(c: cfg.Config) -> None:
    """Raise for a config whose models cannot be trained stacked."""
    if models.estimator_for(c) == "iwae" and c.kl_warmup > 0:
        # the warmed IWAE surrogate of one model cannot be read back from a stacked Bound
        raise ConfigError("IWAE with KL warm-up cannot be trained stacked (its per-model training objective is "
                          "not recoverable); use sequential or kl_warmup = 0")
    if models.spec(c.model).init is not None or c.weight_decay or is_corpus_spec(c.data) or models.spec(c.model).images:
        # stacking knows plain MLPs (not the PixelCNNs), no data-dependent start (NVDM's unigram bias), no weight decay
        # and no sparse word counts; each model trained alone gets all of them right
        raise ConfigError(f"{c.model} on {c.data}{' with weight_decay' if c.weight_decay else ''} cannot be "
                          "trained stacked; use sequential")
    hierarchy = len(cfg.latent_sizes(c)) > 1  # only the hierarchical models take several layer sizes
    if hierarchy or c.prior == "vamp" or c.flow != "none":
        # stacking replaces the encoder and decoder by batched copies; the VampPrior's pseudo-inputs,
        # a flow's steps and a hierarchy's extra networks are read outside them
        what = "a hierarchical VAE" if hierarchy else "the VampPrior" if c.prior == "vamp" else "a flow posterior"
        raise ConfigError(f"{what} cannot be trained stacked; use sequential")
    if c.lr_decay != 1.0 or c.ema or c.max_minutes:
        raise ConfigError("a learning-rate decay (lr_decay), a weight average (ema) or a time budget (max_minutes) "
                          "is trained solo only; use sequential")
    if c.beta != 1.0:
        raise ConfigError("beta != 1 is trained solo only (a stacked loss is read back as the bound's); use sequential")
    if c.precision in ("bf16", "tf32"):
        raise ConfigError(f"stacked models train in fp32; precision = {c.precision!r} needs sequential")


def model_objectives(bound: objectives.Bound, beta: float) -> torch.Tensor:
    """(M,) each model's differentiated loss, as its solo run computes it, from a stacked Bound ((M, B) values)."""
    if beta == 1.0 or "kl" not in bound.terms:  # the loss is the negative bound (reconstruction for ae)
        return -bound.value.mean(-1)
    return -(bound.terms["recon"] - beta * bound.terms["kl"]).mean(-1)  # SGVB-A/B during KL warm-up


def _generator(device: torch.device) -> torch.Generator:
    """A model's own stream for binarization; on the CPU it continues the global stream right after
    the model's seeded initialisation, where a solo run's draws begin."""
    g = torch.Generator(device=device)
    if device.type == "cpu":
        g.set_state(torch.get_rng_state())
    else:
        g.manual_seed(int(torch.randint(0, 2**62, (1,))))
    return g


def _host_streams(state: tuple) -> None:
    """Set numpy's and Python's global streams (a checkpoint saves them; stacked training draws from neither)."""
    np.random.set_state(state[0])
    random.setstate(state[1])


def _copy_into(model: torch.nn.Module, params: dict[str, torch.Tensor], m: int) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name][m])


def fit_group(configs: Sequence[cfg.Config], datas: Sequence[ImageData], *, how: str = "auto",
              progress: bool = True, log: Callable[[str], None] = info, outputs: Sequence[EpochOutput] = (),
              group_seeds: Sequence[int] | None = None, positions: Sequence[int] | None = None) -> list[dict]:
    """Train M models as one stacked model; write each one's run folder (config.out, already claimed).

    `group_seeds`, `positions`: these M models are models `positions` of a group with these seeds (default: the
    group is these models), trained as they are in the whole group."""
    size = len(configs)
    group_seeds = [c.seed for c in configs] if group_seeds is None else list(group_seeds)
    positions = list(range(size)) if positions is None else list(positions)
    return _fit(configs, datas, how, progress, log, outputs, group_seeds, positions)


def _fit(configs: Sequence[cfg.Config], datas: Sequence[ImageData], how: str, progress: bool,
         log: Callable[[str], None], outputs: Sequence[EpochOutput], group_seeds: list[int],
         positions: list[int]) -> list[dict]:
    size = len(configs)
    # a stacked group's matrix products are fp32 (check_stackable refuses others), and its configs say so
    res = [dataclasses.replace(resolve(c.replace(precision="fp32"), d.scale),
                               precision_why="a stacked sweep group trains in fp32 (sweep_stacked.py)")
           for c, d in zip(configs, datas)]
    r0, c0, device = res[0], configs[0], res[0].device
    objective = objectives.get(r0.estimator)

    # each model starts as its solo run would: seeded, built, then its own random stream
    solo, gens, optimizers, hosts = [], [], [], []
    for r, data in zip(res, datas):
        seed_everything(r.config.seed)
        solo.append(models.build(r.config, data.shape).to(device))
        gens.append(_generator(device))
        hosts.append((np.random.get_state(), random.getstate()))  # numpy's and Python's streams as its solo run's
        optimizers.append(make_optimizer(solo[-1], r.config.lr))
    params = stack.stack_parameters(solo)  # {name: (M, *shape)}
    net = stack.stacked_model(solo[0], params, how)
    kinds = {type(ch).__name__ for ch in net.children()}
    log(f"stacking {size} models ({'batched matmuls' if kinds == {'LinearStack'} else 'vmap'})")
    adam = stack.StackedAdam(params, [c.lr for c in configs], optimizers[0])
    # reparameterisation noise is drawn for all models at once, (K, M, B, Dz) per step, from the
    # global stream, seeded from the group's seeds so that a sweep is reproducible
    torch.manual_seed(int(np.random.SeedSequence(group_seeds).generate_state(1)[0]))

    # each distinct split is stored once: model m trains on rows offset[m] + [0, n) of train_x
    slot: dict[int, int] = {}
    slots = [slot.setdefault(id(d), len(slot)) for d in datas]
    stores = [d.train for d in {id(d): d for d in datas}.values()]
    n = stores[0].shape[0]
    if n == 0:
        raise VaelabError("the training split is empty")
    train_x = torch.cat(stores).to(device) if len(stores) > 1 else stores[0].to(device)  # (U*n, D) stored values
    offset = torch.tensor(slots, device=device).mul(n).unsqueeze(1)  # (M, 1)
    vals: dict[int, torch.Tensor | None] = {}  # slot -> validation inputs, one fixed binarization each
    for d, s in zip(datas, slots):
        if s not in vals:
            vals[s] = inputs.eval_inputs(r0, d, "val", device) if len(d.val) else None
    scale = datas[0].scale
    steps_per_epoch = math.ceil(n / c0.batch_size)
    warmup_steps = c0.kl_warmup * steps_per_epoch
    meta = {"shape": dumps(list(datas[0].shape), "the data shape")}

    writers = [EpochWriter(RunFolder(r.config.out), r, vals[s], meta, outputs=outputs) for r, s in zip(res, slots)]
    for w, model, opt in zip(writers, solo, optimizers):
        w.start(model, opt)
    diverged: list[int | None] = [None] * size
    active = [True] * size

    log_every = max(1, c0.epochs // 20)
    bar = progress_bar(progress, total=c0.epochs * steps_per_epoch, desc=f"sweep x{size}", unit="step")
    step = 0
    for epoch in range(1, c0.epochs + 1):
        if not any(active):
            break
        _sync(device)
        start = time.perf_counter()
        # each model's data order is its solo run's (batches.ResidentBatches with one shard)
        perms = torch.stack([torch.randperm(n, generator=order_generator(c.seed, epoch, 0, device), device=device)
                             for c in configs]) + offset  # (M, n)
        loss_sum, bound_sum = torch.zeros(size, device=device), torch.zeros(size, device=device)
        for i in range(steps_per_epoch):
            idx = perms[:, i * c0.batch_size:(i + 1) * c0.batch_size]  # (M, b)
            x = rows(train_x, idx.reshape(-1), scale).view(size, idx.shape[1], -1)  # (M, b, D)
            if r0.binarize:  # each model re-binarizes its own batch from its own stream
                x = torch.stack([binarize(x[m], gens[m]) for m in range(size)])
            elif r0.dequantize:
                x = torch.stack([dequantize(x[m], scale, gens[m]) for m in range(size)])
            beta = kl_weight(step, warmup_steps)
            with split_noise.stacked_members(len(group_seeds), positions):  # the whole group's noise, ours kept
                bound = objective(net, x, k=c0.k, beta=beta)  # value (M, b)
            adam.zero_grad()
            (bound.loss * size).backward()  # loss is the mean over models; each slice gets its own gradient
            adam.step(active)
            loss_sum.add_(model_objectives(bound, beta), alpha=idx.shape[1])
            bound_sum.add_(bound.value.mean(-1), alpha=idx.shape[1])
            step += 1
            bar.update(1)
        _sync(device)
        train_seconds = time.perf_counter() - start

        for m in [m for m in range(size) if active[m]]:
            w, st = writers[m], writers[m].state
            train = {"train_loss": -float(bound_sum[m]) / n}
            if c0.kl_warmup > 0:
                train["train_objective"] = float(loss_sum[m]) / n
            if not all(map(math.isfinite, train.values())):
                active[m], diverged[m] = False, epoch
                _write(bar, log, f"{w.run.name}: diverged at epoch {epoch} (non-finite loss); it stops, the "
                                 f"others go on; try a smaller lr")
                continue
            _copy_into(solo[m], params, m)
            st["step"] = step
            adam.model_state(m, solo[m], optimizers[m])
            _host_streams(hosts[m])  # its checkpoint holds its own streams, whichever models were built after it
            w.end_epoch(epoch, solo[m], optimizers[m], train | {"train_seconds": train_seconds},
                        rng=gens[m].get_state() if device.type == "cpu" else None)
            if st["stopped_early"]:
                active[m] = False  # masked out of every later Adam step
                _write(bar, log, f"{w.run.name}: early stopping at epoch {epoch}, no validation improvement "
                                 f"for {configs[m].patience} epochs")

        if epoch in (1, c0.epochs) or epoch % log_every == 0:
            scores = [w.state["best_val"] for m, w in enumerate(writers) if diverged[m] is None and w.state["epoch"]]
            text = (f"  best {metrics.label(writers[0].key, c0.k)} max {max(scores):.3f} median "
                    f"{statistics.median(scores):.3f} min {min(scores):.3f}") \
                if scores and vals[slots[0]] is not None else ""
            _write(bar, log, f"epoch {epoch:3d}  training {sum(active)}/{size}{text}  ({train_seconds:.2f} s)")
    bar.close()

    for m, w in enumerate(writers):
        if diverged[m] is None:
            _host_streams(hosts[m])
            w.finish(solo[m], optimizers[m])
    return [{"epochs": w.state["epoch"], "best_val": w.best, "stopped_early": w.state["stopped_early"],
             "diverged_at": diverged[m]} for m, w in enumerate(writers)]
