"""fit(): the training loop, written out. No per-model branches: models and objectives plug in.

The training split sits on the device as one stored (uint8) tensor, or streams from an .npy file;
each step gathers a batch by index, scales it to [0, 1] and, for Bernoulli likelihoods, draws a
fresh binarization (dynamic binarization). Every epoch ends with a validation bound, a metrics
line and an atomic checkpoint, which is what makes `--resume` continue bit-exactly on the CPU.
Under torchrun the same loop runs in every process on its shard of the data (see parallel.py).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import config as cfg
from . import families, graphs, models, noise, objectives, parallel, report, runs
from .batches import ResidentBatches, StreamedBatches
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .data import ImageData, binarize, dequantize, is_corpus, rows
from .data.npy import NpyRows
from .errors import VaelabError

VAL_SEED = 1234  # validation uses its own fixed noise, outside the training RNG stream


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
    """
    if not weight_decay:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True, capturable=capturable)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=lr, fused=True, capturable=capturable)


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up from ~0 to 1 over warmup_steps optimiser steps (1 when off)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


class ObjectiveStep(nn.Module):
    """Model and objective as one module, so DistributedDataParallel sees the whole forward pass."""

    def __init__(self, model: nn.Module, objective: Callable, k: int, bf16: bool = False):
        super().__init__()
        self.model, self.objective, self.k, self.bf16 = model, objective, k, bf16

    def forward(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        # bf16 runs the networks' matrix products in bfloat16; distributions stay float32
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.objective(self.model, x, k=self.k, beta=beta).loss


# What validation scores for each training estimator, and its metrics key; the ELBO (SGVB-B) otherwise.
# An IWAE run is selected on its own bound, IWAE-k with the training k; its val_elbo is logged too.
VALIDATION = {"ae": ("ae", "val_recon"), "dae": ("dae", "val_recon"), "iwae": ("iwae", "val_iwae")}


@torch.no_grad()
def validation_score(model: nn.Module, x: torch.Tensor, estimator: str, batch: int = 1024, k: int = 1) -> float:
    """Mean validation bound (ELBO via SGVB-B; IWAE-k for IWAE runs; reconstruction for AEs), fixed noise."""
    model.eval()
    name = VALIDATION.get(estimator, ("sgvb-b",))[0]
    objective = objectives.get(name)
    k = k if name == "iwae" else 1
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(VAL_SEED)
        total = sum(float(objective(model, x[i:i + batch], k=k).value.double().sum())
                    for i in range(0, len(x), batch))
    model.train()
    return total / max(1, len(x))


def _write(bar: tqdm, log: Callable[[str], None], line: str) -> None:
    """A log line that does not tear the progress bar."""
    if bar.disable:
        log(line)
    else:
        with bar.external_write_mode():
            log(line)


def _read_metrics(path: Path, upto_epoch: int) -> list[dict]:
    return [r for r in report.read_metrics(path) if r["epoch"] <= upto_epoch]  # a crash may leave half a line


def _batches(c: cfg.Config, data: ImageData, world: parallel.World, device: torch.device):
    """The batch source: streamed for .npy data, else resident, sharded over the processes."""
    if isinstance(data.train, NpyRows):
        if world.distributed:
            raise VaelabError("distributed training on npy: (streamed) data is not supported; "
                              "use one process, or an in-memory dataset")
        return StreamedBatches(data.train, c.batch_size, seed=c.seed, device=device)
    if len(data.train) == 0:
        raise VaelabError("the training split is empty")
    shards = c.shards or world.size
    if shards % world.size:
        raise VaelabError(f"shards = {shards} must be a multiple of the {world.size} processes")
    if shards > 1 and is_corpus(data):
        raise VaelabError("sharded or distributed training on a corpus is not supported yet (its sparse word "
                          "counts cannot be split into interleaved shards); use one process and shards = 0")
    per_process = shards // world.size
    held = list(range(world.rank * per_process, (world.rank + 1) * per_process))
    return ResidentBatches(data.train, c.batch_size, seed=c.seed, device=device, shards=shards, held=held)


def fit(c: cfg.Config, run_dir: str | Path, *, data: ImageData | None = None, resume: bool = False,
        progress: bool = True, log: Callable[[str], None] = print) -> FitResult:
    """Train the configured model, writing everything into run_dir (which must already be claimed)."""
    run_dir = Path(run_dir)
    world = parallel.world_from_env()
    c = c.replace(shards=c.shards or world.size)  # saved resolved, so a resume keeps the batches' make-up
    device = parallel.join(world, runs.resolve_device(c.device))
    data = data if data is not None else runs.load_data(c)
    estimator = models.estimator_for(c)
    dynamic_binarization = runs.binarizes(c)
    dynamic_dequantization = runs.dequantizes(c, data)
    # the CSR gather of word counts sizes its output on the host, which a CUDA graph cannot replay
    use_graphs = graphs.usable(device, c.cuda_graphs, world.distributed) and not is_corpus(data)
    writes = world.writes
    progress = progress and writes

    seed_everything(c.seed)
    model = models.build(c, data.shape, data).to(device)
    if writes and estimator == "sgvb-b" and getattr(model, "stochastic", True) \
            and not families.has_analytic_kl(c.posterior, c.prior):
        log(families.kl_note(c.posterior, c.prior))  # the run says when SGVB-B falls back to SGVB-A
    optimizer = make_optimizer(model, c.lr, c.weight_decay, capturable=use_graphs)
    state = {"epoch": 0, "step": 0, "best_val": -math.inf, "bad_epochs": 0, "stopped_early": False}
    if resume:
        state = load_checkpoint(run_dir / "checkpoint.safetensors", model, optimizer)
    metrics_path = run_dir / "metrics.jsonl"
    if writes:
        metrics = _read_metrics(metrics_path, state["epoch"])
        metrics_path.write_text("".join(json.dumps(m) + "\n" for m in metrics))
        (run_dir / "config.toml").write_text(cfg.to_toml(c))

    source = _batches(c, data, world, device)
    val_x = runs.eval_inputs(c, data, "val", device) if len(data.val) else None  # replicated: it is small
    warmup_steps = c.kl_warmup * source.steps
    scale = data.scale
    meta = {"shape": json.dumps(list(data.shape))}  # lets the weights be rebuilt without the data
    forward = parallel.wrap(ObjectiveStep(model, objectives.get(estimator), c.k, c.precision == "bf16"),
                            world, device)
    loss_sum = torch.zeros((), device=device)  # one tensor for the whole run: a CUDA graph writes it

    def step(storage: torch.Tensor, idx: torch.Tensor | None, beta: float) -> torch.Tensor:
        x = rows(storage, idx, scale)  # (B, D) floats
        if dynamic_binarization:
            x = binarize(x)  # a fresh binarization every time an image is seen
        elif dynamic_dequantization:
            x = dequantize(x, scale)  # fresh uniform noise within each pixel level
        loss = forward(x, beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach(), alpha=x.shape[0])
        return loss

    run_step = graphs.GraphedStep(step, lambda: _sync(device)) if use_graphs else step
    score_key = VALIDATION.get(estimator, ("sgvb-b", "val_elbo"))[1]
    score_name = {"val_recon": "val recon", "val_iwae": f"val IWAE-{c.k}", "val_elbo": "val ELBO"}[score_key]
    log_every = max(1, c.epochs // 20)  # about 20 log lines however long the run
    first = state["epoch"] + 1
    bar = tqdm(total=(c.epochs - state["epoch"]) * source.steps, desc="train", unit="step",
               disable=not progress or state["stopped_early"], dynamic_ncols=True)
    model.train()
    for epoch in range(first, c.epochs + 1):
        if state["stopped_early"]:
            break
        _sync(device)
        start = time.perf_counter()
        loss_sum.zero_()
        with noise.split_batch(world.size, world.rank):
            for i, (storage, idx) in enumerate(source.epoch(epoch)):
                loss = run_step(storage, idx, kl_weight(state["step"], warmup_steps))
                state["step"] += 1
                if progress and i % 50 == 0:  # .item() waits for the device, so not every step
                    bar.set_postfix_str(f"epoch {epoch}/{c.epochs} loss {loss.item():.2f}", refresh=False)
                bar.update(1)
        _sync(device)
        train_seconds = time.perf_counter() - start
        train_loss = float(parallel.total(loss_sum, world)) / source.rows_per_epoch()
        if not math.isfinite(train_loss):
            bar.close()
            raise VaelabError(f"training diverged at epoch {epoch} (non-finite loss); try a smaller --lr")

        row = {"epoch": epoch, "train_loss": train_loss, "train_seconds": train_seconds}
        improved = val_x is None
        if val_x is not None:
            score = validation_score(model, val_x, estimator, k=c.k)
            if score_key == "val_iwae":
                row["val_elbo"] = validation_score(model, val_x, "sgvb-b")
            row[score_key] = score
            improved = score > state["best_val"]
            if improved:
                state["best_val"], state["bad_epochs"] = score, 0
            else:
                state["bad_epochs"] += 1
            state["stopped_early"] = bool(c.patience and state["bad_epochs"] >= c.patience)
        state["epoch"] = epoch
        if writes:
            if improved:
                save_weights(run_dir / "model.safetensors", model, meta)
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            save_checkpoint(run_dir / "checkpoint.safetensors", model, optimizer, state)
            if c.save_every and epoch % c.save_every == 0:  # early weights, for `amortization-gap --epoch`
                (run_dir / "epochs").mkdir(exist_ok=True)
                save_weights(run_dir / "epochs" / f"epoch-{epoch:03d}.safetensors", model, meta)

        val_text = f"  {score_name} {score:.3f}" if val_x is not None else ""
        if writes and (epoch == first or epoch == c.epochs or epoch % log_every == 0 or state["stopped_early"]):
            _write(bar, log, f"epoch {epoch:3d}  train loss {train_loss:.3f}{val_text}  ({train_seconds:.2f} s)")
        if writes and state["stopped_early"]:
            _write(bar, log, f"early stopping: no validation improvement for {c.patience} epochs")
    bar.close()

    if writes and not (run_dir / "model.safetensors").exists():  # zero epochs: keep the initial weights
        save_weights(run_dir / "model.safetensors", model, meta)
    parallel.barrier(world)
    return FitResult(run_dir, model, state["epoch"], state["best_val"], state["stopped_early"])
