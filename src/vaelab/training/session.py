"""One training session: prepare -> claim the run folder -> fit -> finish.

    prepare   the config made once (make_config), the data loaded once, and everything training would refuse
              checked before a folder is claimed: the model against the data, the memory it needs, the device,
              precision and batches; the config is then resolved once (runs/resolve.py)
    claim     the run folder is this process's (runs/claims.py): a new run, an overwrite, or a resume
    fit       training/loop.py trains what prepare resolved, on the data prepare loaded (it reads no file)
    finish    the caller's (vaelab.api.finish_run: evaluation, plots, report), on the same data

vaelab.train (and so `vaelab train`) runs `train` below; a sweep prepares each of its models here and trains
its groups of one with `fit`. RESUMABLE is the one rule for what a resumed run may change.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import models
from ..config import schema as cfg
from ..data import ImageData, is_corpus
from ..errors import ConfigError, VaelabError
from ..estimators import memory
from ..logs import info
from ..runs import claims, inputs, kept_data, loading
from ..runs import user_arrays as user_data
from ..runs.checkpoint import trained_epochs
from ..runs.folder import CHECKPOINT, CONFIG, RunFolder
from ..runs.resolve import Resolved, resolve
from ..runs.resolve import device as resolve_device
from ..runtime import parallel, same_folder
from ..topics import coherence, normalise
from . import loop

# what may change when a run is resumed: nothing that alters the model or the data it sees
RESUMABLE = frozenset({"epochs", "device", "patience", "eval_k", "precision", "save_every", "max_minutes"})


def make_config(config: cfg.Config | str | Path | None = None, **overrides: Any) -> cfg.Config:
    """A Config from a Config, a TOML path or shipped name, or defaults, plus keyword overrides."""
    chosen = dict(overrides)  # the keys the user set, in the file or as arguments
    if isinstance(config, cfg.Config):
        base = config
    else:
        base = cfg.Config()
        if config is not None:
            chosen = cfg.read_values(cfg.find(config)) | chosen
    c = cfg.from_dict(chosen, base)
    # a model that fixes its likelihood or estimator must not drop one the user asked for without a word
    for key, used in (("likelihood", models.likelihood_for), ("estimator", models.estimator_for),
                      ("prior", models.prior_for)):
        if key in chosen and used(c) != getattr(c, key):
            raise ConfigError(f"model {c.model!r} always uses the {key} {used(c)!r}, not {getattr(c, key)!r}")
    return c


def check_resume(overrides: dict[str, Any], config: cfg.Config | str | Path | None = None) -> None:
    """Refuse, before the run folder is touched, a resume that would change more than RESUMABLE
    (or that names a config besides the run: the run's own config.toml is the config)."""
    fixed = sorted(set(overrides) - RESUMABLE)
    if config is not None or fixed:
        raise VaelabError(f"resume continues a run as configured; only {', '.join(sorted(RESUMABLE))} "
                          f"may change (got {', '.join(fixed) or 'config'})")


def prepare(c: cfg.Config, data: ImageData, world: parallel.World, *, together: int = 1) -> Resolved:
    """What training would refuse, checked before a run folder is claimed, and the config resolved once.

    `together`: models trained at once (a stacked sweep group) for the memory estimate. The result's config
    has its shards fixed (0: one per process), so a resume keeps the batches' make-up.
    """
    c = c.replace(shards=c.shards or world.size)
    dev = resolve_device(c.device)
    # a model too large for this machine (estimated on the meta device, before anything is allocated)
    memory.check_training(c, data.shape, len(data.train), len(data.test), dev, together)
    models.build(c, data.shape, data)  # a model that cannot take this data (or its embedding file)
    loop.check_batches(c, data, world)
    if c.npmi_reference and is_corpus(data):  # refused now, not by the evaluation after training
        coherence.check_path(c.npmi_reference)
    # under torchrun the process group is joined here: each process trains on its own device
    return resolve(c, data.scale, parallel.join(world, dev))  # tf32 on a CPU is refused; auto never is


def fit(r: Resolved, data: ImageData, run: str | Path | None = None, *, resume: bool = False, progress: bool = False,
        log: Callable[[str], None] = info, outputs: Sequence = ()) -> loop.FitResult:
    """Train a prepared config into its run folder, claimed by the caller: `run`, or r.config.out for a new run
    (a resumed run's config.toml names where it was made, which a moved or copied folder is not)."""
    run = run if run is not None else r.config.out
    return loop.fit(r, run, data, resume=resume, progress=progress, log=log, outputs=outputs)


def train(config: cfg.Config | str | Path | None = None, *, out: str | Path | None = None, overwrite: bool = False,
          resume: bool | str | Path = False, finish: Callable[..., Any] | None = None, progress: bool = False,
          log: Callable[[str], None] = info, outputs: Sequence = (), labels: Any = None,
          **overrides: Any) -> Path:
    """A whole session (vaelab.train's arguments; `finish(run, data=, progress=, log=)` ends it); the run folder."""
    world = parallel.world_from_env()
    if not isinstance(resume, bool):  # resume=RUN names the run to continue
        if out is not None and Path(out) != Path(resume):
            raise VaelabError(f"resume={str(resume)!r} and out={str(out)!r} name two runs; name the run once")
        out, resume = resume, True
    if resume:
        if out is None and not isinstance(config, cfg.Config):  # train(RUN, resume=True): the run, not a config
            out, config = config, None
        check_resume(overrides, config)  # before the folder is locked or anything in it is touched
        run = Path(out or "")
        # under torchrun every process reads the run: the same files on every node (runtime/same_folder.py)
        same_folder.same_files(run, (CONFIG, CHECKPOINT), world, "every process reads it to resume training")
        failure = None
        try:  # process 0 locks the run first (undoing an overwrite a kill interrupted), then reads what it holds
            claim = claims.claim_resume(run) if world.writes else \
                claims.Claim(run, "retry" if RunFolder(run).is_failed_start() else "resume")
        except Exception as e:
            failure = e
        parallel.settle(world, failure)  # the others learn whether process 0 could
    else:
        failure = None
        try:  # what fails on one node alone (data missing at its path there) stops every process (parallel.settle)
            arrays = user_data.take(overrides, labels)  # data=x: checked here, kept in the run folder once it exists
            c = make_config(config, **overrides)
            c = c if arrays else kept_data.absolute(c)  # the run names its data alike from any working directory
            data = user_data.load(arrays, c) if arrays else inputs.load_data(c)  # fail on bad data before any write
            c = inputs.conditioned(c, data)  # a conditional run records the width of its one-hot labels
            if world.distributed and not (out or c.out):
                raise VaelabError("under torchrun, name the run folder (out)")
            run = Path(out or c.out or claims.default_out(c))
            # saved resolved (runs/resolve.py); checked (a name config.toml can hold) before the claim
            r = prepare(c.replace(out=str(run)), data, world)
        except Exception as e:
            failure = e
        parallel.settle(world, failure)
        claim = _claim(run, overwrite, world, r.device)
    # the folder is this process's until training and finishing end; an error before the first checkpoint
    # puts back the run an overwrite replaced (runs/claims.py)
    with claim:
        if resume:
            failure = None
            try:
                c = cfg.from_dict(overrides, loading.load_config(run))
                data = inputs.load_data(c)
                r = prepare(c, data, world)
            except Exception as e:
                failure = e
            parallel.settle(world, failure)
            done = 0 if claim.how == "retry" else trained_epochs(RunFolder(run).checkpoint)
            if c.epochs < done:  # refused before training writes: config.toml keeps the epochs it had
                raise VaelabError(f"{run} has trained {done} epochs already; resuming with epochs = {c.epochs} "
                                  f"would train nothing and leave more epochs than its config says; "
                                  f"give epochs >= {done}")
            if world.writes:
                RunFolder(run).remove_temporaries()  # what a kill mid-write left
            if claim.how == "retry":  # no checkpoint: nothing trained is kept, so start it again as saved
                log(f"{run} stopped before its first checkpoint; training it from epoch 0 with its saved config")
                if world.writes:
                    RunFolder(run).weights.unlink(missing_ok=True)  # from a kill inside epoch 1
                    keep_data(run, c, data)  # as a start writes it (a kill may have come before)
                resume = False
        else:
            if claim.how == "retry":
                log(f"{run} held a failed start (stopped before its first checkpoint); starting it again")
            if arrays:
                c, data = user_data.keep(arrays, run, r.config)
                r = replace(r, config=c)  # data = the run's own copy of the arrays
            if world.writes:  # the data's fingerprint, and what plots and topics read without it (runs/kept_data.py)
                keep_data(run, r.config, data)
        try:
            fit(r, data, run, resume=resume, progress=progress, log=log, outputs=outputs)
        finally:
            parallel.leave()
        # evaluations of weights that training replaced are marked stale (finishing evaluates the new weights,
        # choosing eval.json again)
        if world.writes and resume and finish is None:
            RunFolder(run).history.refresh_eval()
        if finish is not None and world.writes:
            finish(run, data=data, progress=progress, log=log)
    return run


def _reading(data: ImageData) -> dict[str, Any] | None:
    """How a document run reads new text (topics/normalise.py), recorded with its data; None for images."""
    return normalise.recipe() if is_corpus(data) else None


def keep_data(run: str | Path, c: cfg.Config, data: ImageData) -> None:
    """What a new run keeps of its data (runs/kept_data.py), its text reading for documents: as train writes it."""
    kept_data.keep(run, c, data, _reading(data))


def _claim(run: Path, overwrite: bool, world: parallel.World, device) -> claims.Claim:
    """Process 0 claims the run folder (claims.claim); under torchrun the others learn whether it could."""
    if not world.distributed:
        return claims.claim(run, overwrite=overwrite)
    error, claim = None, claims.Claim(run, "")  # the other processes hold no lock: they write nothing
    if world.writes:
        try:
            claim = claims.claim(run, overwrite=overwrite)
        except VaelabError as e:
            error = e
    if not parallel.agree(error is None, world, device):
        parallel.leave()
        raise error or VaelabError(f"process 0 could not claim {run}")
    return claim
