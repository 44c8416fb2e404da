"""The amortization gap: the encoder's q(z|x) against per-point optimised posteriors
(Cremer et al. 2018, inference suboptimality).

Standard VI gives every data point its own variational parameters xi_i = (mu_i, sigma_i) and
optimises each one; amortized VI pays once for an encoder and reads xi_i off in one forward pass.
With the decoder frozen, the difference of the two ELBOs is what amortization costs (Cremer et al. 2018):

    inference gap     = log p(x) - ELBO(q_amortized)
                      = [log p(x) - ELBO(q_optimised)]  +  [ELBO(q_optimised) - ELBO(q_amortized)]
                      =   approximation gap             +   amortization gap (`gap`)

log p(x) is estimated by IWAE-k with the optimised q as proposal. Both ELBOs are Monte-Carlo means
over the same number of samples, nats per example.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..distributions import families
from ..errors import VaelabError
from ..logs import info
from ..models.contract import is_latent_variable
from ..runs import folder as run_folder
from ..runs import inputs, loading, metrics
from ..runs.folder import RunFolder
from ..runs.resolve import device as resolve_device
from . import memory, objectives
from .evaluation import CHUNK_ELEMENTS

GAP_SEED = 0  # the optimisation and the evaluation use their own seeded noise


class _FixedPosterior:
    """A model whose encoder is replaced by given per-point posteriors; the rest of its contract unchanged."""

    def __init__(self, model: nn.Module, q):
        self.model, self.q = model, q

    def encode(self, x: torch.Tensor):
        return self.q

    def __getattr__(self, name: str):
        return getattr(self.model, name)


@torch.no_grad()
def bounds(model: nn.Module, x: torch.Tensor, q, k: int, seed: int = GAP_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Per-point ELBO (mean of log w) and IWAE-k (logsumexp of log w minus log k) for posteriors q over x (P, D)."""
    p = x.shape[0]
    chunk = max(1, min(k, CHUNK_ELEMENTS // (max(model.data_dim, 1) * p)))
    lse = torch.full((p,), -math.inf, dtype=torch.float64, device=x.device)
    total = torch.zeros(p, dtype=torch.float64, device=x.device)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        for done in range(0, k, chunk):
            _, log_px_z, ratio = objectives.log_weights(model, x, min(chunk, k - done), q)
            log_w = (log_px_z + ratio).double()  # (kk, P)
            lse = torch.logaddexp(lse, torch.logsumexp(log_w, 0))
            total += log_w.sum(0)
    return (total / k).cpu().numpy(), (lse - math.log(k)).cpu().numpy()


def optimise_posteriors(model: nn.Module, x: torch.Tensor, q0, *, steps: int = 500, lr: float = 1e-2,
                        samples: int = 8, seed: int = GAP_SEED):
    """Per-point (loc, log scale) started at q0 and moved by Adam on the ELBO, decoder frozen; returns the final q.

    The points are optimised together in one tensor (P, Dz), but each point's ELBO depends only on its
    own parameters, so this is P independent optimisations done in one batch. The ELBO estimator is
    SGVB-B (closed-form KL) where torch.distributions knows the KL, SGVB-A otherwise.
    """
    kind = families.family_of(q0)
    loc, scale = families.loc_scale(q0)
    loc = loc.detach().clone().requires_grad_(True)  # (P, Dz)
    log_scale = scale.detach().log().clone().requires_grad_(True)  # (P, Dz)
    # a flow posterior (FlowVAE): each point also gets its own flow context h; the flow's weights stay shared
    ctx = getattr(q0, "context", None)
    ctx = ctx.detach().clone().requires_grad_(True) if ctx is not None else None  # (P, C)

    def posterior(loc: torch.Tensor, log_scale: torch.Tensor, ctx: torch.Tensor | None):
        q = families.location_scale(kind, loc, log_scale.exp())
        if ctx is not None:
            q.context = ctx
        return q

    opt = torch.optim.Adam([loc, log_scale] + ([ctx] if ctx is not None else []), lr=lr)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for _ in range(steps):
                q = posterior(loc, log_scale, ctx)
                bound = objectives.sgvb_b(_FixedPosterior(model, q), x, k=samples)
                loss = bound.loss * x.shape[0]  # the sum over points: each gets its own full gradient
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return posterior(loc.detach(), log_scale.detach(), ctx.detach() if ctx is not None else None)


def measure(model: nn.Module, x: torch.Tensor, *, steps: int = 500, lr: float = 1e-2, samples: int = 8,
            k: int = 1000) -> dict[str, Any]:
    """Amortized vs optimised ELBO on the points x (P, D), the gap between them, and the time each takes."""
    if hasattr(model, "layer_terms"):
        raise VaelabError("amortization-gap optimises one posterior per point; a hierarchical VAE's q(z1|x, z2) "
                          "is a different Gaussian for every sample of z2, which it cannot optimise per point")
    model.eval()
    p = x.shape[0]
    with torch.no_grad():
        _sync(x)
        start = time.perf_counter()
        q_amortized = model.encode(x)  # one forward pass for all P points
        _sync(x)
        t_amortized = time.perf_counter() - start
    start = time.perf_counter()
    q_optimised = optimise_posteriors(model, x, q_amortized, steps=steps, lr=lr, samples=samples)
    _sync(x)
    t_optimised = time.perf_counter() - start
    elbo_a, _ = bounds(model, x, q_amortized, k)
    elbo_o, iwae_o = bounds(model, x, q_optimised, k)
    gap = elbo_o - elbo_a  # (P,)
    return {
        "points": p,
        "amortized_elbo": float(elbo_a.mean()),
        "optimized_elbo": float(elbo_o.mean()),
        "gap": float(gap.mean()),
        "gap_std": float(gap.std()),
        "points_with_negative_gap": int((gap < 0).sum()),
        "iwae": float(iwae_o.mean()),
        "approximation_gap": float((iwae_o - elbo_o).mean()),
        "inference_gap": float((iwae_o - elbo_a).mean()),
        "seconds_per_point_amortized": t_amortized / p,
        "seconds_per_point_optimized": t_optimised / p,
        "steps": steps, "lr": lr, "samples_per_step": samples, "k": k,
        "estimators": {
            "amortized_elbo": f"ELBO of the encoder's q(z|x), Monte Carlo mean of log w over k={k} samples",
            "optimized_elbo": f"ELBO of per-point q_i after {steps} Adam steps (lr {lr}, {samples} samples/step) "
                              "from the encoder's output, decoder frozen; same estimator"
                              + ("; per point: the base Gaussian and the flow's context h, the flow's weights "
                                 "shared and frozen" if getattr(model, "flow", None) is not None else ""),
            "gap": "amortization gap = optimized_elbo - amortized_elbo, mean nats per point",
            "iwae": f"IWAE-{k} with the optimised q as proposal (estimate of log p(x))",
            "approximation_gap": "iwae - optimized_elbo", "inference_gap": "iwae - amortized_elbo",
            "seconds_per_point_optimized": f"optimisation wall time / points (all {p} points in one batch)",
        },
    }


def _sync(x: torch.Tensor) -> None:
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def _epoch_of(run: Path, weights: str) -> int | None:
    """The epoch a weights file holds: from its name, or the best validation epoch for model.safetensors."""
    if run_folder.epoch_of(weights) is not None:
        return run_folder.epoch_of(weights)
    rows = RunFolder(run).read_metrics()
    for key in ("val_iwae", "val_elbo"):
        found = metrics.best(rows, key)
        if found:
            return found[1]
    return rows[-1]["epoch"] if rows else None


def weights_for(run: str | Path, epoch: int | None) -> str:
    """The weights file (relative to the run) for an epoch kept by `save_every`, or the run's model.safetensors."""
    return RunFolder(run).weights_for(epoch)


def run_gap(run: str | Path, *, epoch: int | None = None, points: int = 100, steps: int = 500, lr: float = 1e-2,
            samples: int = 8, k: int = 1000, device: str = "cpu",
            log: Callable[[str], None] = info) -> dict[str, Any]:
    """Measure the gap for one checkpoint of a run and merge it into RUN/amortization_gap.json."""
    run = Path(run)
    if min(points, steps, samples, k) < 1 or not 0 < lr <= torch.finfo(torch.float32).max:
        raise VaelabError("points, steps, samples and k must be at least 1, and lr positive (a float32)")
    c = loading.load_config(run)
    weights = weights_for(run, epoch)
    data = inputs.load_data(c)
    dev = resolve_device(device)
    _, model = loading.load_model(run, data.shape, dev, weights=weights)
    if not is_latent_variable(model):
        raise VaelabError(f"{c.model!r} has no posterior q(z|x), so there is no amortization gap to measure")
    x = inputs.eval_inputs(c, data, "test", dev)[:points]  # the first P test points, as evaluate scores them
    memory.check_batch(c, data.shape, len(x), samples, f"samples = {samples}", dev)  # each optimisation step
    result = {"weights": weights, "epoch": _epoch_of(run, weights), **measure(model, x, steps=steps, lr=lr,
                                                                              samples=samples, k=k)}
    folder = RunFolder(run)
    old = folder.read_json(run_folder.GAP)
    old = old.get("checkpoints", []) if isinstance(old, dict) else []
    entries = [e for e in old if isinstance(e, dict) and e.get("weights") != weights] + [result]
    entries.sort(key=lambda e: (e.get("weights") == run_folder.WEIGHTS, e.get("epoch") or 0))
    summary = {key: v for key, v in entries[-1].items()}  # the run's own weights if measured, else the latest epoch
    folder.write_json(run_folder.GAP, summary | {"checkpoints": entries})
    return result
