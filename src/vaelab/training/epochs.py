"""The end of an epoch, in one place: validation, best score and patience, weights, metrics, checkpoint.

loop.fit and every model of a stacked sweep group (sweeps/stacked.py) hand their finished epoch to
EpochWriter.end_epoch, which is the only code that writes weights, metrics lines and checkpoints.
Anything else to do per epoch (a TensorBoard logger, another file) is an EpochOutput:

    class Printer:
        def on_epoch(self, run: RunFolder, row: dict, model: nn.Module) -> None:
            print(run.name, row["epoch"], row["train_loss"])

    vaelab.train(config, out=out, outputs=[Printer()])

An output may also have on_start(run, resolved, val_x, shape), called once when a run starts or
resumes, after config.toml is saved: the resolved config, the validation inputs (None without a
validation split) and the shape of one example (training/tensorboard_log.py logs the hyper-parameters there).
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol, Sequence

import torch
from torch import nn

from ..estimators import objectives
from ..runs import claims, provenance
from ..runs.checkpoint import load_checkpoint, save_checkpoint, save_weights
from ..runs.folder import EPOCHS, RunFolder
from ..runs.resolve import Resolved
from . import averaging

VAL_SEED = 1234  # validation uses its own fixed noise, outside the training RNG stream
# What validation scores for each training estimator, and its metrics key; the ELBO (SGVB-B) otherwise.
# An IWAE run is selected on its own bound, IWAE-k with the training k; its val_elbo is logged too.
VALIDATION = {"ae": ("ae", "val_recon"), "dae": ("dae", "val_recon"), "iwae": ("iwae", "val_iwae"),
              "exact": ("exact", "val_logp"), "vq": ("vq", "val_recon")}


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


def score_key(estimator: str) -> str:
    """The metrics key of the validation score a run is selected on."""
    return VALIDATION.get(estimator, ("sgvb-b", "val_elbo"))[1]


class EpochOutput(Protocol):
    """Something done at the end of every epoch, after the run folder's own files are written (and, optionally,
    on_start(run, resolved, val_x, shape) once when the run starts or resumes)."""

    def on_epoch(self, run: RunFolder, row: dict, model: nn.Module) -> None: ...


def fresh_state() -> dict[str, Any]:
    return {"epoch": 0, "step": 0, "best_val": -math.inf, "bad_epochs": 0, "stopped_early": False}


class EpochWriter:
    """One run's end-of-epoch bookkeeping; `writes` is False in the processes that only train (torchrun)."""

    def __init__(self, run: RunFolder, r: Resolved, val_x: torch.Tensor | None, meta: dict[str, str], *,
                 outputs: Sequence[EpochOutput] = (), writes: bool = True, average: nn.Module | None = None):
        self.run, self.r, self.val_x, self.meta = run, r, val_x, meta
        self.average = average  # the weights' moving average (training/averaging.py): what is scored and saved
        self.outputs, self.writes = list(outputs), writes
        self.key = score_key(r.estimator)
        self.state = fresh_state()
        self.rows: list[dict] = []
        self.sessions: list[dict] = []  # provenance.json

    def start(self, model: nn.Module, optimizer: torch.optim.Optimizer, resume: bool = False) -> dict[str, Any]:
        """Save the resolved config and the metrics so far (on resume: up to the checkpoint's epoch)."""
        if resume:
            self.state = load_checkpoint(self.run.checkpoint, model, optimizer, self.average)
        if self.writes:
            self.rows = self.run.read_metrics(self.state["epoch"]) if resume else []
            why = self.r.precision_why
            if resume and self.run.read_config().precision == self.r.precision:  # kept: so is the reason it was chosen
                why = self.run.config_note("precision") or why
            self.run.write_config(self.r.config, {"precision": why})
            self.run.write_metrics(self.rows)
            self.sessions = (self.run.read_provenance() if resume else []) + \
                [provenance.session(self.r, self.state["epoch"] + 1) | {"precision_why": why}]
            self.run.write_provenance(self.sessions)
            shape = tuple(json.loads(self.meta.get("shape", "[]")))
            for out in self.outputs:
                if hasattr(out, "on_start"):
                    out.on_start(self.run, self.r, self.val_x, shape)
        return self.state

    def end_epoch(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, train: dict[str, float],
                  rng: torch.Tensor | None = None) -> dict:
        """Score, select, and write the epoch; returns its metrics row. rng: the CPU stream to checkpoint."""
        st, c = self.state, self.r.config
        trained, model = model, averaging.shown(model, self.average)
        row = {"epoch": epoch, **train}
        improved = self.val_x is None
        if self.val_x is not None:
            if self.key == "val_iwae":
                row["val_elbo"] = validation_score(model, self.val_x, "sgvb-b")
            row[self.key] = score = validation_score(model, self.val_x, self.r.estimator, k=c.k)
            improved = score > st["best_val"]
            st["best_val"], st["bad_epochs"] = (score, 0) if improved else (st["best_val"], st["bad_epochs"] + 1)
            st["stopped_early"] = bool(c.patience and st["bad_epochs"] >= c.patience)
        st["epoch"] = epoch
        if not self.writes:
            return row
        # The checkpoint goes last: it commits the epoch. A kill before it leaves the previous one, from
        # which --resume trains this epoch again, bit for bit, and rewrites the files before it unchanged.
        if improved:
            save_weights(self.run.weights, model, self.meta)
        if c.save_every and epoch % c.save_every == 0:  # early weights, for `amortization-gap --epoch`
            self.run.make_subfolder(EPOCHS)
            save_weights(self.run.epoch_path(epoch), model, self.meta)
        self.rows.append(row)
        self.run.write_metrics(self.rows)
        self._checkpoint(trained, optimizer, rng)
        for out in self.outputs:
            out.on_epoch(self.run, row, model)
        return row

    def finish(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Zero epochs trained: keep the initial weights as the run's model, and a checkpoint, which marks a
        run as started (a folder without one is a failed start, runs/folder.py)."""
        if self.writes and not self.run.weights.exists():
            save_weights(self.run.weights, averaging.shown(model, self.average), self.meta)
        if self.writes and not self.run.checkpoint.exists():
            self._checkpoint(model, optimizer)
        if self.writes and self.sessions:
            self.sessions[-1] = provenance.finished(self.sessions[-1], self.state["epoch"])
            self.run.write_provenance(self.sessions)

    def _checkpoint(self, model: nn.Module, optimizer: torch.optim.Optimizer, rng: torch.Tensor | None = None) -> None:
        """The one place a run's training state is written; rng: the CPU stream to save instead of the global one."""
        with torch.random.fork_rng(devices=[]):
            if rng is not None:
                torch.set_rng_state(rng)
            save_checkpoint(self.run.checkpoint, model, optimizer, self.state, self.average)
        claims.commit(self.run)  # the first one ends the start: an overwritten run kept aside goes now

    @property
    def best(self) -> float | None:
        return self.state["best_val"] if math.isfinite(self.state["best_val"]) else None
