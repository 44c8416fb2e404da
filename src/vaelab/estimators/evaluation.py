"""Dataset-level bounds and the importance-sampled log-likelihood, batched over points and samples.

For each point x and K samples z_k ~ q(z|x), with log w_k = log p(x, z_k) - log q(z_k|x):
    ELBO   ~ mean_k log w_k                      (Monte Carlo, K samples)
    IWAE-K = log (1/K) sum_k w_k                 (a tighter lower bound; ELBO <= IWAE-K <= log p(x))
    NLL-K  = -IWAE-K                             (the importance-sampled estimate of -log p(x))
All values are nats per example, summed over data dimensions. Samples are processed in chunks
that fit memory, and combined with a running logsumexp in float64, so any K works. A learned prior made of
the model's own networks (the VampPrior) is computed once per evaluation, not once per chunk (vamp.held).

Chunking does not change the numbers beyond float32 rounding: z for sample s of point p is a pure function
of (seed, p, s) (runtime/streams.py), whichever chunk holds them. What remains is that a BLAS kernel may round a
row's float32 matrix product differently for another number of rows, and float64 sums over other sample
chunks round differently: the means then move by at most ~1e-8 relative (measured on digits VAE, HVAE, IAF
and Student-t runs over batch 1 to 500; batch 64 and 500 gave identical numbers), and
tests/estimators/test_eval_chunks.py holds them to 1e-6 relative.

Under torchrun the processes score contiguous runs of the same chunks and gather the per-point results, so N
processes give one process's numbers bit for bit (tests/estimators/test_eval_processes.py).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..distributions.corruption import Noise, fixed
from ..logs import progress_bar
from ..models.contract import is_exact, is_latent_variable
from ..models.vamp import held
from ..runtime import parallel, streams
from .objectives import log_weights

# Elements of the largest per-chunk tensor (K_chunk * B_chunk * width): 4 MB of float32. Larger
# chunks are slower on the CPU: they fall out of cache, and allocations over glibc's mmap threshold
# (32 MB at most) are returned to the kernel on every free and page-faulted in again.
CHUNK_ELEMENTS = 1 << 20
# On a GPU a chunk must be large enough that the arithmetic, not the launch of its few hundred kernels,
# is what costs: 512 MB of float32 (a convolutional decoder's 50,176-wide activations: 2,600 samples a chunk).
CUDA_CHUNK_ELEMENTS = 1 << 27


def chunk_elements(device: torch.device) -> int:
    """Elements of the largest per-chunk tensor on `device`."""
    return CUDA_CHUNK_ELEMENTS if device.type == "cuda" else CHUNK_ELEMENTS


@dataclass
class PointBounds:
    """Per-example results, each a (N,) float64 array, plus posterior means of the first layer (N, Dz)."""

    elbo: np.ndarray
    iwae: np.ndarray
    recon: np.ndarray
    kl: np.ndarray
    means: np.ndarray


def widest_activation(model: nn.Module) -> int:
    """Widest activation per sample: sets how many (point, sample) pairs fit in one chunk."""
    widths = [model.data_dim, model.latent_dim]
    widths += [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    widths += [m.out_channels * 64 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    widths.append(getattr(model, "activation_width", 0))  # a model whose convolutions keep the full image size
    return max(widths)


def chunk_shape(n: int, k: int, width: int, batch: int = 0,
                device: torch.device = torch.device("cpu")) -> tuple[int, int]:
    """(points, samples) of each chunk point_bounds scores: `batch` points (0: as many as fill a chunk, with up
    to 64 samples each) and as many of the k samples as then fit; points may exceed n (the last chunk is short)."""
    elements = chunk_elements(device)
    batch = batch or max(1, min(n, elements // (width * min(k, 64))))
    return batch, max(1, min(k, elements // (width * batch)))
@contextmanager
def unmoved_generators(device: torch.device) -> Iterator[None]:
    """Refuse a model that draws from torch's generators in evaluation: its numbers would depend on the chunking.
    Every draw must go through noise.rsample (runtime/streams.py); this catches one that does not."""
    cuda = device.type == "cuda"
    before = torch.get_rng_state(), torch.cuda.get_rng_state(device) if cuda else None
    yield
    if not torch.equal(torch.get_rng_state(), before[0]) or (cuda and not torch.equal(
            torch.cuda.get_rng_state(device), before[1])):
        raise RuntimeError("the model drew from torch's random generator during evaluation, so its numbers would "
                           "depend on the chunk sizes; draw through noise.rsample / noise.rsample_each instead")


def share(n: int, batch: int, world: parallel.World) -> range:
    """The first points of the chunks this process scores: a contiguous run of the whole split's chunks (the
    chunks a single process would score, so each is bit-identical to its one-process twin), as many per
    process as can be, the last process taking any extra (and the short last chunk)."""
    starts = range(0, n, batch)
    chunks = len(starts)
    return starts[chunks * world.rank // world.size:chunks * (world.rank + 1) // world.size]


@torch.inference_mode()
def point_bounds(model: nn.Module, x: torch.Tensor, k: int, *, batch: int = 0, seed: int = 0,
                 progress: bool = False, world: parallel.World = parallel.World()) -> PointBounds:
    """ELBO, IWAE-k, reconstruction and KL for every row of x (on the model's device).

    Under torchrun (`world` of several processes) each process scores its share of the chunks (share()) and every
    process returns all the points' results, gathered: the same numbers, bit for bit, as one process, because the
    chunks are the same and point p's draws come from its stream under its index in x, whichever process holds it.
    """
    model.eval()
    n = x.shape[0]
    batch, k_chunk = chunk_shape(n, k, widest_activation(model), batch, x.device)  # of the whole split: share()
    starts = share(n, batch, world)
    first = starts[0] if starts else n
    mine = (min(n, starts[-1] + batch) if starts else n) - first  # points this process scores
    out = {name: np.empty(mine) for name in ("elbo", "iwae", "recon", "kl")}
    means = []
    bar = progress_bar(progress and world.writes, total=mine * k, unit="sample", unit_scale=True, desc=f"IWAE-{k}",
                       leave=False)
    with unmoved_generators(x.device), held(model):
        for lo in starts:
            xb = x[lo:lo + batch]
            lse = torch.full((xb.shape[0],), -math.inf, device=x.device, dtype=torch.float64)
            sum_w = torch.zeros_like(lse)
            sum_rec = torch.zeros_like(lse)
            q = model.encode(xb)
            for done in range(0, k, k_chunk):
                kk = min(k_chunk, k - done)
                # z of (point, sample) whatever the chunks and the process (runtime/streams.py): lo indexes all of x
                with streams.block(seed, lo, done):
                    _, log_px_z, ratio = log_weights(model, xb, kk, q)
                log_w = (log_px_z + ratio).double()  # (kk, B)
                lse = torch.logaddexp(lse, torch.logsumexp(log_w, 0))
                sum_w += log_w.sum(0)
                sum_rec += log_px_z.double().sum(0)
                bar.update(kk * xb.shape[0])
            kl = model.analytic_kl(q)
            rec = sum_rec / k
            sl = slice(lo - first, lo - first + xb.shape[0])
            out["elbo"][sl] = (sum_w / k).cpu().numpy()
            out["iwae"][sl] = (lse - math.log(k)).cpu().numpy()
            out["recon"][sl] = rec.cpu().numpy()
            out["kl"][sl] = (kl.double() if kl is not None else rec - sum_w / k).cpu().numpy()
            means.append(q.mean.float().cpu().numpy())
    bar.close()
    if not world.distributed:
        return PointBounds(**out, means=np.concatenate(means))
    return _gathered(out, means, n, world, x.device)


def _gathered(out: dict[str, np.ndarray], means: list[np.ndarray], n: int, world: parallel.World,
              device: torch.device) -> PointBounds:
    """All the points' results from every process's share, in point order (copied exactly: float32 means travel as
    float64). Flattened, so a process with no chunk (more processes than chunks) sends nothing of any width."""
    names = list(out)
    own = torch.from_numpy(np.stack([out[name] for name in names], 1)).reshape(-1).to(device)  # (mine * 4,)
    mean = torch.from_numpy(np.concatenate(means).astype(np.float64)).reshape(-1) if means else torch.zeros(0)
    every = parallel.gather_rows(own, world).reshape(n, len(names)).cpu().numpy()  # (n, 4)
    means_all = parallel.gather_rows(mean.to(device, torch.float64), world).reshape(n, -1).float().cpu().numpy()
    return PointBounds(**{name: every[:, i].copy() for i, name in enumerate(names)}, means=means_all)


LAYER_K = 100  # samples per point for the per-layer KL split (a mean over all points: ample)
AU_THRESHOLD = 0.01  # Burda et al. (2016, section 5.2): unit u is active when Cov_x(E_q[z_u]) > 10^-2
AU_SAMPLES = 100  # draws per point for E_q[z] where it has no closed form (a flow's z_K, an HVAE's layers)


@torch.inference_mode()
def layer_bounds(model: nn.Module, x: torch.Tensor, k: int = LAYER_K, *, seed: int = 0) -> dict:
    """Per stochastic layer of a model with `layer_terms` (hvae): its Monte-Carlo KL and active units.

    KL_l = E_q[log q(z_l | .) - log p(z_l | .)] over k samples per point (the layers' KLs sum to the KL);
    active units of layer l from E_q[z_l], the mean of the same k draws (a lower layer's mean is an
    average over its parents' draws, not its mean at the parents' means), sampling noise removed (mean_spread).
    """
    model.eval()
    n = x.shape[0]
    batch = max(1, chunk_elements(x.device) // (widest_activation(model) * k))
    sums: dict[str, float] = {}
    means, variances = [], []
    with unmoved_generators(x.device), held(model):
        for lo in range(0, n, batch):
            xb = x[lo:lo + batch]
            with streams.block(seed, lo, 0):
                z, _ = model.posterior_sample(xb, k)  # (k, B, D1+...+DL)
            for name, t in model.layer_terms(xb, z).items():
                sums[name] = sums.get(name, 0.0) + float(t.double().mean(0).sum())
            means.append(z.double().mean(0).cpu())
            variances.append(z.double().var(0).cpu() if k > 1 else torch.zeros_like(means[-1]))
    spread = [mean_spread(m.numpy(), v.numpy(), k) for m, v in zip(model.split(torch.cat(means)),
                                                                   model.split(torch.cat(variances)))]
    layers = {f"z{i + 1}": active_units(s) for i, s in enumerate(spread)}
    return {"kl_layers": {name: v / n for name, v in sums.items()},
            "active_units_layers": layers,
            "active_units": sum(layers.values()),
            "estimators": {"kl_layers": f"KL of each layer given its parents, Monte Carlo over k={k} samples per point",
                           "active_units_layers": f"active units of each layer: Cov_x(E_q[z_l]) > {AU_THRESHOLD}, "
                                                  f"E_q[z_l] by Monte Carlo over k={k} samples per point",
                           "active_units": "active units of all layers together (the sum of active_units_layers)"}}


def mean_spread(means: np.ndarray, sample_var: np.ndarray | None = None, samples: int = 1) -> np.ndarray:
    """Cov_x(E_q[z_u]) of each latent dimension, (Dz,), from the posterior means of N points (N, Dz).

    Means estimated from `samples` draws each carry sampling noise of variance Var_q[z_u] / samples, which
    adds (N-1)/N of its average to their spread; given each point's sample variance (N, Dz), it is taken off,
    so the spread of a dimension whose mean does not move with x is about 0 at any number of draws.
    """
    if len(means) < 2:
        return np.zeros(means.shape[1])
    spread = means.var(axis=0)  # (Dz,)
    if sample_var is not None:
        spread = spread - (len(means) - 1) / len(means) * sample_var.mean(axis=0) / samples
    return spread


def active_units(spread: np.ndarray, threshold: float = AU_THRESHOLD) -> int:
    """Latent dimensions whose posterior mean varies across data: Cov_x(E_q[z_u]) > threshold (mean_spread)."""
    return int((np.asarray(spread) > threshold).sum())


@torch.inference_mode()
def sampled_spread(model: nn.Module, x: torch.Tensor, samples: int = AU_SAMPLES, *, seed: int = 0) -> np.ndarray:
    """mean_spread of E_q[z] estimated from `samples` posterior draws per point (a flow posterior has no
    closed-form mean: E_q[z_K] is not the base mean, nor the base mean pushed through the flow)."""
    model.eval()
    batch = max(1, chunk_elements(x.device) // (widest_activation(model) * samples))
    means, variances = [], []
    with unmoved_generators(x.device), held(model):
        for lo in range(0, x.shape[0], batch):
            with streams.block(seed, lo, 0):  # draws of (point, sample), whatever the batch (runtime/streams.py)
                z, _ = model.posterior_sample(x[lo:lo + batch], samples)  # (S, B, Dz)
            means.append(z.double().mean(0).cpu())
            variances.append(z.double().var(0).cpu() if samples > 1 else torch.zeros_like(means[-1]))
    return mean_spread(torch.cat(means).numpy(), torch.cat(variances).numpy(), samples)


@torch.inference_mode()
def reconstruction_score(model: nn.Module, x: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """log p(x | z = embed(x)) per example, for models with no bound (plain autoencoders)."""
    model.eval()
    return np.concatenate([model.decode(model.embed(x[i:i + batch])).log_prob(x[i:i + batch]).double().cpu().numpy()
                           for i in range(0, x.shape[0], batch)])


@torch.inference_mode()
def noisy_reconstruction(model: nn.Module, x: torch.Tensor, noise: Noise, batch: int = 1024) -> dict:
    """Reconstruct the CLEAN x from one seeded corruption x~ (the same x~ for every model scored on x).

    Returns means over the points: -log p(x | z = embed(x~)) in nats and the squared error
    ||x - E[x | z]||^2 of the decoder mean, both summed over data dimensions.
    """
    model.eval()
    x_noisy = fixed(noise, x)  # (N, D)
    nll, sq = [], []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        p = model.decode(model.embed(x_noisy[i:i + batch]))
        nll.append(-p.log_prob(xb).double().cpu())
        sq.append((p.mean - xb).pow(2).sum(-1).double().cpu())
    return {"noise": noise.describe(), "noisy_recon_error": float(torch.cat(nll).mean()),
            "noisy_squared_error": float(torch.cat(sq).mean())}


@torch.inference_mode()
def exact_log_prob(model: nn.Module, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    """log p(x) per example of an exact-likelihood model, one forward pass per batch, (N,) float64."""
    model.eval()
    return np.concatenate([model.log_prob(x[i:i + batch]).double().cpu().numpy() for i in range(0, x.shape[0], batch)])


def bits_per_dim(nll: float, d: int, levels: int = 0) -> float:
    """-log p in bits per data dimension: nll / (d log 2), nats summed over d dimensions.

    For a density on dequantized x~ = (v + u) / L of data with L levels, (nll + d log L) / (d log 2): the
    discrete data's bound (images.dequantize; Theis et al. 2016), so 8-bit data under a uniform density gives 8.
    """
    offset = d * math.log(levels) if levels else 0.0
    return (nll + offset) / (d * math.log(2))


def exact_summary(model: nn.Module, x: torch.Tensor, batch: int = 0) -> dict:
    """The exact numbers of an autoregressive model: log p(x), NLL, bits per dimension; no k, no bound."""
    start = time.perf_counter()
    lp = exact_log_prob(model, x, batch or 256)
    nll = -float(lp.mean())
    how = "exact: sum_i log p(x_i | x_<i), one forward pass per batch"
    return {"n": int(x.shape[0]), "logp": -nll, "nll": nll, "bits_per_dim": bits_per_dim(nll, model.data_dim),
            "seconds": time.perf_counter() - start,
            "estimators": {"logp": f"log p(x), {how}", "nll": f"-log p(x), {how}",
                           "bits_per_dim": "the exact NLL in bits per data dimension"}}


def _own_terms(model: nn.Module, x: torch.Tensor, out: dict) -> dict:
    """out with the numbers a model adds itself (model.evaluation_terms(x): a VQ-VAE's codebook use)."""
    terms = getattr(model, "evaluation_terms", None)
    if terms is None:
        return out
    more = dict(terms(x))
    notes = out["estimators"] | more.pop("estimators", {})
    return out | more | {"estimators": notes}


def summarize(model: nn.Module, x: torch.Tensor, k: int, *, batch: int = 0, seed: int = 0,
              progress: bool = False, extra: Callable[[PointBounds], dict] | None = None, levels: int = 0,
              world: parallel.World = parallel.World()) -> dict:
    """The numbers `vaelab evaluate` reports: means over the points, nats per example.

    Under torchrun the k-sample bounds, the costly part, are split over the processes (point_bounds); the
    rest (active units, an HVAE's layers at min(k, 100) samples, a corpus's scores) every process computes whole.

    extra(point_bounds), when given, adds more keys (and estimator notes) from the per-point results.
    levels: L when x is dequantized data of L levels (bits_per_dim then bounds the discrete data's); 0 otherwise.
    """
    start = time.perf_counter()
    d = model.data_dim
    if is_exact(model):
        return exact_summary(model, x, batch)
    if not is_latent_variable(model):
        rec = reconstruction_score(model, x)
        return _own_terms(model, x, {
            "n": int(x.shape[0]), "recon": float(rec.mean()), "seconds": time.perf_counter() - start,
            "estimators": {"recon": "log p(x | z=f(x)), a reconstruction score, not a likelihood"}})
    pb = point_bounds(model, x, k, batch=batch, seed=seed, progress=progress, world=world)
    nll = -float(pb.iwae.mean())
    with torch.no_grad():  # point_bounds used the closed form when the model has one
        closed = model.analytic_kl(model.encode(x[:1])) is not None
    kl_how = "closed form" if closed else f"Monte Carlo over the k={k} samples (no closed form for this pair)"
    out = {
        "n": int(x.shape[0]),
        "k": int(k),
        "elbo": float(pb.elbo.mean()),
        "iwae": float(pb.iwae.mean()),
        "nll": nll,
        "recon": float(pb.recon.mean()),
        "kl": float(pb.kl.mean()),
        "active_units": active_units(mean_spread(pb.means)),
        "bits_per_dim": bits_per_dim(nll, d, levels),
        "seconds": time.perf_counter() - start,
        "estimators": {
            "elbo": f"ELBO, Monte Carlo mean of log w over k={k} samples",
            "iwae": f"IWAE-{k} lower bound on log p(x)",
            "nll": f"NLL-{k} = -IWAE-{k}",
            "recon": "E_q log p(x|z)", "kl": f"KL(q(z|x) || p(z)), {kl_how}",
            "bits_per_dim": (f"(NLL-{k} + D log {levels}) / (D log 2): bits per dimension of the {levels}-level data "
                             "(the dequantized density's bound)" if levels else f"NLL-{k} / (D log 2)"),
            "active_units": f"latent dimensions with Cov_x(E_q[z_u]) > {AU_THRESHOLD}, E_q[z] in closed form",
        },
    }
    if getattr(model, "label_conditional", False):  # Sohn et al. 2015: every number is conditional on the label y
        out["conditional"] = {"on": "y, the class label (one-hot)", "classes": int(model.classes)}
        out["estimators"] |= {"elbo": f"ELBO of log p(x | y), Monte Carlo mean of log w over k={k} samples",
                              "iwae": f"IWAE-{k} lower bound on log p(x | y), conditional on the class label y",
                              "nll": f"NLL-{k} = -IWAE-{k}, of x given its label y",
                              "kl": f"KL(q(z|x, y) || p(z)), {kl_how}", "recon": "E_q log p(x|z, y)"}
    if hasattr(model, "layer_terms"):  # every layer's units, and the headline counts them all
        more = layer_bounds(model, x, min(k, LAYER_K), seed=seed)
        out["estimators"] |= more.pop("estimators")
        out |= more
    elif not getattr(model, "mean_in_closed_form", True):
        out["active_units"] = active_units(sampled_spread(model, x, AU_SAMPLES, seed=seed))
        out["estimators"]["active_units"] = (f"latent dimensions with Cov_x(E_q[z_u]) > {AU_THRESHOLD}, E_q[z] by "
                                             f"Monte Carlo over {AU_SAMPLES} posterior draws per point")
    out = _own_terms(model, x, out)
    if extra is not None:
        more = dict(extra(pb))
        out["estimators"] |= more.pop("estimators", {})
        out |= more
        out["seconds"] = time.perf_counter() - start
    return out
