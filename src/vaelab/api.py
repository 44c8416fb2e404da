"""The library in a few calls: train, evaluate, plot, report, load, sample.

    import vaelab
    run = vaelab.train(data="digits", epochs=10)          # a run folder with weights and metrics
    print(vaelab.evaluate(run, k=1000)["nll"])            # NLL-1000, nats per example
    images = vaelab.sample(vaelab.load(run), 16)          # (16, D) means of p(x|z), z ~ p(z)
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from . import models
from .config import schema as cfg
from .data import ImageData, is_corpus, levels
from .distributions.corruption import Noise
from .errors import VaelabError, need_count
from .estimators import evaluation as ev
from .logs import info
from .models import user_networks
from .reports import report as report_mod
from .reports import views
from .runs import claims, inputs, kept_data, loading
from .runs import user_arrays as user_data
from .runs.folder import CONFIG, DATA_SOURCE, LIVE_WRITE_SECONDS, WEIGHTS, RunFolder
from .runs.resolve import device as resolve_device
from .runs.resolve import resolve
from .runtime import parallel, same_folder
from .runtime.precision import matmuls
from .topics import coherence, scores
from .training import session
from .training.session import make_config  # noqa: F401 (vaelab.make_config)


def train(config: cfg.Config | str | Path | Any = None, *, out: str | Path | None = None, overwrite: bool = False,
          resume: bool | str | Path = False, finish: bool = True, progress: bool = False, log=info,
          outputs: Sequence = (), labels: Any = None, explorer: bool = True, encoder: nn.Module | str | None = None,
          decoder: nn.Module | str | None = None, **overrides: Any) -> Path:
    """Train a model; returns its run folder. Like `vaelab train`, it then evaluates, plots and writes
    report.html and explorer.html (explorer=False skips the explorer); finish=False stops after training.

    data: a dataset name (config.DATASETS); a NumPy array / torch tensor of images, (N, D), (N, H, W) or
    (N, 1, H, W) in [0, 1], with optional `labels` (N,); a torch Dataset yielding x or (x, y); or a (train, test)
    pair of those. The run keeps the arrays (runs/user_arrays.py). In-memory data may come first: train(x).
    encoder, decoder: your own networks, as instances or "pkg.module:Class" (models/user_networks.py has the
    contract); the run keeps their class and arguments and builds them again wherever it is loaded.
    overwrite=True replaces the run at `out` (kept until the new run's first checkpoint, and put back if it
    fails before); resume=RUN (or resume=True with out=RUN) continues it. Another process training in the
    folder is refused.
    outputs: per-epoch outputs (epochs.EpochOutput), called after each epoch's files are written.

    Under torchrun every process calls this; process 0 alone writes the run folder.
    """
    if user_data.is_data(config):  # train(x): in-memory data in the first place
        if "data" in overrides:
            raise VaelabError("data is given twice: as the first argument and as data=")
        config, overrides["data"] = None, config
    for role, net in (("encoder", encoder), ("decoder", decoder)):
        if net is not None:
            overrides[role], args = (net, "") if isinstance(net, str) else user_networks.spec_of(net, role)
            overrides.setdefault(f"{role}_args", args)
    done = partial(finish_run, explorer=explorer) if finish else None  # prepare, claim, fit, finish: one session
    return session.train(config, out=out, overwrite=overwrite, resume=resume, finish=done, progress=progress, log=log,
                         outputs=outputs, labels=labels, **overrides)


def evaluate(run: str | Path, *, k: int | None = None, split: str = "test", device: str | None = None,
             batch: int | None = None, progress: bool = False, data: ImageData | None = None,
             write: bool = True, precision: str = "fp32", noise: Noise | None = None,
             points: int | None = None, npmi_window: int | None = None,
             npmi_reference: str | None = None, world: parallel.World | None = None) -> dict[str, Any]:
    """Bounds on log p(x) for a split; writes RUN/eval.json. Values are nats per example.

    Under torchrun (`torchrun --nproc-per-node N -m vaelab evaluate RUN`) every process calls this: each scores
    its share of the points, every process returns the same numbers as one process would, and process 0 alone
    writes. `world`: the processes to share with (default: those torchrun started; World() for this one alone).

    The same weights, k, split and points give the same numbers whatever `batch` and the device's chunk
    sizes (evaluate.point_bounds). By default the networks run in float32 and the bounds are summed in
    float64, whatever precision the run trained in; precision "bf16" or "tf32" (CUDA), or "auto" (the
    training table, precision.auto), runs the matrix products lower, and the result then names its
    precision and is kept apart from fp32 evaluations (evals/<...>-bf16.json, never eval.json's first choice).
    With `noise` (by default a denoising autoencoder's own), also the error of reconstructing the
    clean x from one seeded corruption of it (evaluate.noisy_reconstruction).
    With `points`, only the split's first `points` examples are scored (the result says of how many).
    A document model's NPMI follows the run's npmi_window and npmi_reference (topics/coherence.py) unless
    `npmi_window` or `npmi_reference` ("" for the training split) is given; the result then names them,
    and the evaluation is kept apart from those made with the run's own convention.
    """
    k, batch = (need_count(name, v) if v is not None else None for name, v in (("k", k), ("batch", batch)))
    world = parallel.world_from_env() if world is None else world
    try:  # under torchrun every process leaves the group it joined, also on an error
        # under torchrun every process reads the run: the same files on every node (runtime/same_folder.py)
        same_folder.same_files(run, (CONFIG, WEIGHTS, DATA_SOURCE), world, "every process reads it to evaluate")
        failure = None
        try:  # what may fail on one node alone (its copy of the data) stops every process (parallel.settle)
            folder = RunFolder(run)
            c = folder.read_config()
            if data is None:
                c = kept_data.check_source(run, c)  # the files the run trained on, unchanged (runs/kept_data.py)
                data = inputs.load_data(c)
            asked = resolve_device(device or c.device)
        except Exception as e:
            failure = e
        parallel.settle(world, failure)
        # evaluation resolves its own precision request (fp32 unless asked), never the training one; under
        # torchrun each process evaluates on its own device
        dev = parallel.join(world, asked)
        r = resolve(c.replace(precision=precision), data.scale, dev)
        dev, precision = r.device, r.precision
        model, sha256 = loading.load_weights_of(c, run, data.shape, dev)
        stamp = folder.weights_stamp(sha256)  # the weights scored, whatever a training process writes meanwhile
        x = inputs.eval_inputs(r, data, split, dev)
        result = {"split": split, "model": c.model, "data": c.data, "likelihood": r.likelihood, "precision": precision}
        if len(x) == 0:
            raise VaelabError(f"the {split} split of {c.data} is empty; nothing to evaluate")
        if points is not None and not 1 <= points <= len(x):
            raise VaelabError(f"points {points}: the {split} split of {c.data} has {len(x)} points; give 1 to {len(x)}")
        if points is not None and points < len(x):
            result["split_points"], x = len(x), x[:points]
        labels = inputs.split_tensor(data, split)[1] if is_corpus(data) else None
        labels = labels[:len(x)] if labels is not None else None
        result |= _npmi_convention(c, data, npmi_window, npmi_reference)
        reference = coherence.reference(data, result.get("npmi_window", c.npmi_window),
                                        result.get("npmi_reference", c.npmi_reference) or None) \
            if is_corpus(data) else None
        extra = scores.metrics(model, data, x, labels, reference) if is_corpus(data) else None  # perplexity, NPMI, ...
        with matmuls(precision, dev):
            result |= ev.summarize(model, x, k or c.eval_k, batch=batch if batch is not None else c.eval_batch,
                                   progress=progress, extra=extra, levels=levels(data.scale) if r.dequantize else 0,
                                   world=world)
            noise = noise or getattr(model, "noise", None)
            if noise is not None:
                result |= ev.noisy_reconstruction(model, x, noise)
        if extra is not None:
            result.pop("bits_per_dim", None)  # per vocabulary entry means nothing; perplexity is the per-word number
            result["estimators"].pop("bits_per_dim", None)
        if world.distributed:  # how many shared the work: the seconds are theirs
            result["processes"] = world.size
        if write and world.writes:
            folder.remove_temporaries(LIVE_WRITE_SECONDS)
            folder.history.write_eval(result, stamp)
        return result
    finally:
        if world.distributed:
            parallel.leave()


def _npmi_convention(c: cfg.Config, data, window: int | None, reference: str | None) -> dict[str, Any]:
    """The NPMI settings an evaluation asks for where they differ from the run's config: {} for its own."""
    asked = {k: v for k, v in (("npmi_window", window), ("npmi_reference", reference)) if v is not None}
    if asked and not is_corpus(data):
        raise VaelabError(f"{' and '.join(asked)} apply to document models; {c.data} is not a corpus")
    return {k: v for k, v in asked.items() if v != ((getattr(c, k) or "") if k == "npmi_reference" else getattr(c, k))}


def disentanglement(run: str | Path, *, device: str | None = None, seed: int = 0, write: bool = True,
                    data: ImageData | None = None) -> dict[str, Any]:
    """MIG, DCI, SAP and the FactorVAE score (estimators/disentanglement.py) of a run's codes (posterior means)
    against its data's ground-truth factors: fit on the train split's codes, scored on the test split's.
    Writes RUN/evals/test-factors.json; data without factors is refused before anything is computed."""
    from .estimators import disentanglement as dis

    folder = RunFolder(run)
    c = folder.read_config()
    data = data if data is not None else inputs.load_data(c)
    if getattr(data, "factors_train", None) is None:
        raise VaelabError(f"disentanglement metrics need data with ground-truth factors (data shapes); "
                          f"{c.data!r} has none")
    r = resolve(c.replace(precision="fp32"), data.scale, resolve_device(device or c.device))
    model, sha256 = loading.load_weights_of(c, run, data.shape, r.device)
    if not hasattr(model, "embed"):
        raise VaelabError(f"model {c.model!r} has no latent code to score")
    stamp = folder.weights_stamp(sha256)
    model.eval()
    with torch.no_grad():
        codes = {split: torch.cat([model.embed(x[i:i + 2048]) for i in range(0, len(x), 2048)]).double().cpu().numpy()
                 for split in ("train", "test") for x in [inputs.eval_inputs(r, data, split, r.device)]}
    result = {"split": "test", "fit_split": "train", "model": c.model, "data": c.data, "n": len(codes["test"]),
              "n_fit": len(codes["train"]), "factor_names": list(data.factor_names), "seed": seed}
    result |= dis.scores(codes["train"], data.factors_train.numpy(), codes["test"], data.factors_test.numpy(), seed)
    if write:
        folder.history.write_factors(result, stamp)
    return result


def plot(run: str | Path, kind: str, *, device: str = "cpu", **kw: Any) -> Path:
    """One plot into RUN/plots/<kind>.png."""
    return views.RunView(run, device).make(kind, **kw)


def report(run: str | Path) -> Path:
    """RUN/report.html with the metrics and every plot embedded."""
    if not claims.is_run(Path(run)):
        raise VaelabError(f"{run} is not a vaelab run folder (no config.toml); no report written")
    RunFolder(run).remove_temporaries(LIVE_WRITE_SECONDS)
    return report_mod.write_report(run)


def finish_run(run: str | Path, *, data: ImageData | None = None, progress: bool = False, log=info,
               explorer: bool = True) -> Path:
    """Evaluate on the test split, draw every plot, write the explorer (unless explorer=False) and the report."""
    result = evaluate(run, data=data, progress=progress, world=parallel.World())  # process 0 alone finishes a run
    if "logp" in result:
        log(f"test NLL {result['nll']:.3f} nats/example (exact), {result['bits_per_dim']:.4f} bits/dim")
    elif "nll" in result:
        log(f"test ELBO {result['elbo']:.3f}  IWAE-{result['k']} {result['iwae']:.3f}  "
            f"NLL-{result['k']} {result['nll']:.3f} nats/example")
    views.all_plots(run, data=data, log=log)
    if explorer:
        from .explorer.page import write_explorer

        try:
            log(f"explorer: {write_explorer(run, data=data)}")
        except VaelabError as e:  # data the page cannot draw: the report is still written
            log(f"skipped the explorer: {e}")
    path = report(run)
    log(f"report: {path}")
    return path


def load(run: str | Path, device: str = "cpu") -> nn.Module:
    """The trained model of a run folder."""
    return loading.load_model(run, device=device)[1]


@torch.no_grad()
def sample(model: nn.Module, n: int, *, seed: int | None = None) -> torch.Tensor:
    """n draws of the mean of p(x|z) with z ~ p(z), the model's own prior, as values in [0, 1] shaped like the
    training examples: (n, C, H, W) for images, (n, D) for flat data."""
    if not (models.is_latent_variable(model) or models.is_exact(model)):
        raise VaelabError(f"{type(model).__name__} has no prior p(z) to sample from (a plain autoencoder)")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    x = model.sample(n, g).clamp(0.0, 1.0)  # (n, D)
    shape = getattr(model, "data_shape", None)
    return x.reshape(n, *shape) if shape else x
