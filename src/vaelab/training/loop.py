"""fit(): the training loop, written out. No per-model branches: models and objectives plug in.

The training split sits on the device as one stored (uint8) tensor, or streams from an .npy file;
each step gathers a batch by index, scales it to [0, 1] and, for Bernoulli likelihoods, draws a
fresh binarization (dynamic binarization). Every epoch ends in epochs.EpochWriter (validation bound,
metrics line, atomic checkpoint), which is what makes `--resume` continue bit-exactly on the CPU.
The logged train_loss is minus the epoch's mean bound; a KL warm-up's loss is train_objective.
Under torchrun the same loop runs in every process on its shard of the data (see runtime/parallel.py).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import models
from ..config import schema as cfg
from ..data import ImageData, binarize, dequantize, is_corpus, rows
from ..data.npy import NpyRows
from ..errors import VaelabError
from ..estimators import objectives
from ..logs import info, progress_bar
from ..runs import inputs, metrics
from ..runs.folder import RunFolder
from ..runs.json_text import dumps
from ..runs.resolve import Resolved
from ..runtime import parallel, precision, split_noise
from . import averaging, cuda_graphs
from .batches import ResidentBatches, StreamedBatches, check_shards
from .epochs import EpochOutput, EpochWriter, validation_score  # noqa: F401 (validation_score: tests import it here)


@dataclass
class FitResult:
    run_dir: Path
    model: nn.Module
    epochs_done: int
    best_val: float
    stopped_early: bool


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def another_epoch_fits(seconds: Sequence[float], max_minutes: float) -> bool:
    """Whether one more epoch, taken to last as long as the slowest so far, keeps the summed training time
    (train_seconds: validation excluded) within max_minutes; 0 is no budget, and the first epoch always runs."""
    return not max_minutes or not seconds or sum(seconds) + max(seconds) <= 60 * max_minutes


def seed_everything(seed: int) -> None:
    """Seed every RNG a run may touch (torch on all devices, NumPy, Python)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """Adam with the fused kernel (one pass over all parameters; ~3x cheaper steps on the CPU).

    weight_decay is an L2 penalty on the weight matrices (parameters with 2+ dims), never on biases
    or per-dimension variances. Adam scales it like a gradient, so it weighs most on rarely
    updated weights (e.g. NVDM's R for rare words). It is a training device: bounds ignore it.
    A model may split its parameters into Adam groups of its own (`optimizer_groups()`, e.g. FactorVAE's
    discriminator with its own betas): each keeps its own moments, saved in the one checkpoint.
    """
    own = getattr(model, "optimizer_groups", None)
    groups = own() if own is not None else [{"params": list(model.parameters())}]
    if weight_decay:
        groups = [g | {"params": [p for p in g["params"] if (p.ndim >= 2) == matrices],
                       "weight_decay": weight_decay if matrices else 0.0}
                  for g in groups for matrices in (True, False)]
    return torch.optim.Adam(groups, lr=lr, fused=True, capturable=capturable)


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up from ~0 to 1 over warmup_steps optimiser steps (1 when off)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


class ObjectiveStep(nn.Module):
    """Model and objective as one module, so DistributedDataParallel sees the whole forward pass."""

    def __init__(self, model: nn.Module, objective: Callable, k: int, bf16: bool = False):
        super().__init__()
        self.model, self.objective, self.k, self.bf16 = model, objective, k, bf16

    def forward(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss to differentiate, the batch's mean bound): they differ only under KL warm-up."""
        # bf16 runs the networks' matrix products in bfloat16; distributions stay float32
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            bound = self.objective(self.model, x, k=self.k, beta=beta)
        return bound.loss, bound.value.mean()


def _write(bar, log: Callable[[str], None], line: str) -> None:
    """A log line that does not tear the progress bar."""
    if bar.disable:
        log(line)
    else:
        with bar.external_write_mode():
            log(line)


def check_batches(c: cfg.Config, data: ImageData, world: parallel.World) -> None:
    """Refuse a batch source that cannot be built (sizes only: nothing is read); c.shards is resolved."""
    if len(data.train) == 0:
        raise VaelabError("the training split is empty")
    if c.shards % world.size:
        raise VaelabError(f"shards = {c.shards} must be a multiple of the {world.size} processes")
    check_shards(len(data.train), c.batch_size, c.shards)


def _batches(c: cfg.Config, data: ImageData, world: parallel.World, device: torch.device):
    """The batch source: streamed for .npy data, else resident; each process holds its run of the shards."""
    check_batches(c, data, world)
    per_process = c.shards // world.size
    held = list(range(world.rank * per_process, (world.rank + 1) * per_process))
    source = StreamedBatches if isinstance(data.train, NpyRows) else ResidentBatches
    return source(data.train, c.batch_size, seed=c.seed, device=device, shards=c.shards, held=held)


def train_row(loss_sum: torch.Tensor, bound_sum: torch.Tensor, rows_seen: int, warmup: bool) -> dict[str, float]:
    """The epoch's training numbers: minus the mean bound, and the differentiated loss when it differs."""
    row = {"train_loss": -float(bound_sum) / rows_seen}
    if warmup:  # the KL-warm-up surrogate is logged apart, under its own name, never as the bound
        row["train_objective"] = float(loss_sum) / rows_seen
    return row


def fit(r: Resolved, run_dir: str | Path, data: ImageData, *, resume: bool = False, progress: bool = True,
        log: Callable[[str], None] = info, outputs: Sequence[EpochOutput] = ()) -> FitResult:
    """Train the resolved config (training/session.py prepares it) on data, writing everything into run_dir
    (which must already be claimed). Nothing is read or resolved here: r.config is what config.toml saves."""
    run = RunFolder(run_dir)
    world = parallel.world_from_env()
    c = r.config
    device, estimator = r.device, r.estimator
    # the CSR gather of word counts sizes its output on the host, which a CUDA graph cannot replay
    use_graphs = cuda_graphs.usable(device, c.cuda_graphs, world.distributed) and not is_corpus(data) \
        and c.lr_decay == 1.0  # a captured optimizer step keeps the learning rate it was recorded with
    writes = world.writes
    progress = progress and writes

    seed_everything(c.seed)
    model = models.build(r.config, data.shape, data).to(device)
    if writes and estimator == "sgvb-b" and models.is_latent_variable(model) and models.kl_note(c):
        log(models.kl_note(c))  # the run says when SGVB-B falls back to SGVB-A
    optimizer = make_optimizer(model, c.lr, c.weight_decay, capturable=use_graphs)
    val_x = inputs.eval_inputs(r, data, "val", device) if len(data.val) else None  # replicated: it is small
    meta = {"shape": dumps(list(data.shape), "the data shape")}  # lets the weights be rebuilt without the data
    average = averaging.averaged(model, c.ema)  # None without ema
    writer = EpochWriter(run, r, val_x, meta, outputs=outputs, writes=writes, average=average)
    state = writer.start(model, optimizer, resume)

    source = _batches(c, data, world, device)
    warmup_steps = c.kl_warmup * source.steps
    # the loss is not the bound under warm-up, β != 1 or an objective that is never the bound: logged apart
    surrogate = c.kl_warmup > 0 or c.beta != 1.0 or estimator in objectives.SURROGATES
    scale = data.scale
    forward = parallel.wrap(ObjectiveStep(model, objectives.get(estimator), c.k, r.precision == "bf16"),
                            world, device)
    # one tensor each for the whole run: a CUDA graph writes them
    loss_sum, bound_sum = torch.zeros((), device=device), torch.zeros((), device=device)

    def step(storage: torch.Tensor, idx: torch.Tensor | None, beta: float) -> torch.Tensor:
        x = rows(storage, idx, scale)  # (B, D) floats
        if r.binarize:
            x = binarize(x)  # a fresh binarization every time an image is seen
        elif r.dequantize:
            x = dequantize(x, scale)  # fresh uniform noise within each pixel level
        loss, bound = forward(x, beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach(), alpha=x.shape[0])
        bound_sum.add_(bound, alpha=x.shape[0])
        return loss

    step = precision.tf32_step(r.precision, device, step)
    run_step = cuda_graphs.GraphedStep(step, lambda: _sync(device)) if use_graphs else step
    score_name = metrics.label(writer.key, c.k)
    log_every = max(1, c.epochs // 20)  # about 20 log lines however long the run
    first = state["epoch"] + 1
    bar = progress_bar(progress and not state["stopped_early"], total=(c.epochs - state["epoch"]) * source.steps,
                       desc="train", unit="step")
    spent = [float(row.get("train_seconds", 0.0)) for row in writer.rows]  # (epochs so far,) s, earlier sessions' too
    model.train()
    for epoch in range(first, c.epochs + 1):
        if state["stopped_early"]:
            break
        if c.max_minutes and not parallel.agree(another_epoch_fits(spent, c.max_minutes), world, device):
            if writes:
                _write(bar, log, f"time budget: stopped after epoch {epoch - 1}: {sum(spent):.1f} s of training, and "
                                 f"one more epoch (up to {max(spent):.1f} s) could pass "
                                 f"max_minutes = {c.max_minutes:g}")
            break
        for group in optimizer.param_groups:  # from the epoch alone, so a resumed run continues the schedule
            group["lr"] = c.lr * c.lr_decay ** (epoch - 1)
        _sync(device)
        start = time.perf_counter()
        loss_sum.zero_()
        bound_sum.zero_()
        with split_noise.split_batch(world.size, world.rank):
            for i, (storage, idx) in enumerate(source.epoch(epoch)):
                loss = run_step(storage, idx, kl_weight(state["step"], warmup_steps))
                if average is not None:
                    average.update_parameters(model)
                state["step"] += 1
                if not bar.disable and i % 50 == 0:  # .item() waits for the device, so not every step
                    bar.set_postfix_str(f"epoch {epoch}/{c.epochs} loss {loss.item():.2f}", refresh=False)
                bar.update(1)
        _sync(device)
        train_seconds = time.perf_counter() - start
        spent.append(train_seconds)
        n = source.rows_per_epoch()
        train = train_row(parallel.total(loss_sum, world), parallel.total(bound_sum, world), n, surrogate)
        if not all(map(math.isfinite, train.values())):
            bar.close()
            raise VaelabError(f"training diverged at epoch {epoch} (non-finite loss); try a smaller lr")

        row = writer.end_epoch(epoch, model, optimizer, train | {"train_seconds": train_seconds})
        val_text = f"  {score_name} {row[writer.key]:.3f}" if val_x is not None else ""
        if writes and (epoch == first or epoch == c.epochs or epoch % log_every == 0 or state["stopped_early"]):
            _write(bar, log, f"epoch {epoch:3d}  train loss {train['train_loss']:.3f}{val_text}  "
                             f"({train_seconds:.2f} s)")
        if writes and state["stopped_early"]:
            _write(bar, log, f"early stopping: no validation improvement for {c.patience} epochs")
    bar.close()

    writer.finish(model, optimizer)
    parallel.barrier(world)
    return FitResult(run.path, averaging.shown(model, average), state["epoch"], state["best_val"],
                     state["stopped_early"])
