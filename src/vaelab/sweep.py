"""`vaelab sweep`: many small independent models trained at once on one device.

    vaelab.sweep(seeds=8, data="digits", epochs=50)                  # 8 seeds of one config
    vaelab.sweep(grid={"lr": [1e-3, 3e-4], "latent_dim": [2, 20]})    # 4 configs, 2 stacked groups

plan() expands seeds and grid values into one config per model. Models whose configs differ only
in FREE_KEYS have parameters of the same shapes and the same schedule; each such group trains as
one stacked model (stack.py): one batched forward/backward and one Adam call per step for all of
its models. A group of one is trained by the ordinary trainer (train.fit). Every model gets its
own run folder under the sweep folder, with the files a solo run writes; see docs/SWEEPS.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import config as cfg
from . import models, objectives, runs, stack
from .api import finish_run, make_config
from .checkpoint import save_checkpoint, save_weights
from .batches import order_generator
from .data import ImageData, binarize, dequantize, is_corpus_spec, rows
from .errors import ConfigError, VaelabError
from .train import VALIDATION, _sync, _write, fit, kl_weight, make_optimizer, seed_everything, validation_score

# Keys that may differ between the models of one stacked group: they change neither a parameter
# shape nor the step schedule. Everything else (hidden, latent_dim, model, batch_size, epochs,
# data, ...) splits the sweep into groups.
FREE_KEYS = ("seed", "lr", "patience", "eval_k", "eval_batch", "out")


@dataclasses.dataclass(frozen=True)
class Member:
    """One model of a sweep: its folder name and resolved config (config.out is its run folder)."""

    name: str
    values: dict[str, Any]  # the swept keys and this model's values
    config: cfg.Config


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """`KEY=V1,V2,...` items -> {key: [values]} (values coerced later, against the config)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid wants KEY=V1,V2,..., got {item!r}")
        if key in grid:
            raise ConfigError(f"--grid names {key!r} twice")
        grid[key] = [v.strip() for v in raw.split(",")]
    return grid


def _label(v: Any) -> str:
    """A value as it appears in a run folder's name."""
    if isinstance(v, float):
        v = f"{v:g}"
    elif isinstance(v, tuple):
        v = "x".join(str(h) for h in v)
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", str(v).lower() if isinstance(v, bool) else str(v))


def plan(base: cfg.Config, *, seeds: int | None = None, grid: dict[str, Sequence[Any]] | None = None) -> list[Member]:
    """Every model of the sweep: the grid's product, times seeds base.seed, base.seed+1, ... (seed last)."""
    grid = dict(grid or {})
    if seeds is None and not grid:
        raise ConfigError("a sweep needs --seeds N and/or --grid KEY=V1,V2,...")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if seeds is not None and "seed" in grid:
        raise ConfigError("give the seeds with --seeds or with --grid seed=..., not both")
    if "out" in grid:
        raise ConfigError("out cannot be swept: the sweep names each run's folder")
    axes: dict[str, list[Any]] = {}
    for key, raw in grid.items():
        if len(raw) == 0 or any(isinstance(v, str) and not v for v in raw):
            raise ConfigError(f"--grid {key}: every value must be non-empty, got {','.join(map(str, raw))!r}")
        try:
            values = [getattr(cfg.from_dict({key: v}, base), key) for v in raw]
        except ConfigError as e:
            raise ConfigError(f"--grid {key}: {e}") from None
        dupes = sorted({_label(v) for v in values if values.count(v) > 1})
        if dupes:
            raise ConfigError(f"--grid {key}: {', '.join(dupes)} given more than once")
        axes[key] = values
    if seeds is not None:
        axes["seed"] = [base.seed + i for i in range(seeds)]

    members, names = [], set()
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo))
        name = "-".join(f"{k}{_label(v)}" for k, v in values.items())
        if name in names:
            name = f"{name}-{len(members)}"
        names.add(name)
        members.append(Member(name, values, cfg.from_dict(values, base)))
    return members


def group_key(c: cfg.Config) -> tuple:
    """Configs with equal keys can train as one stacked model."""
    return tuple((f.name, getattr(c, f.name)) for f in dataclasses.fields(c) if f.name not in FREE_KEYS)


def groups(members: Sequence[Member], sequential: bool = False) -> list[list[int]]:
    """Indices of members that train together, in order of first appearance."""
    if sequential:
        return [[i] for i in range(len(members))]
    out: dict[tuple, list[int]] = {}
    for i, m in enumerate(members):
        out.setdefault(group_key(m.config), []).append(i)
    return list(out.values())


def _check_stackable(c: cfg.Config) -> None:
    if models.estimator_for(c) == "iwae" and c.kl_warmup > 0:
        # the warmed IWAE surrogate of one model cannot be read back from a stacked Bound
        raise ConfigError("IWAE with KL warm-up cannot be trained stacked (its per-model training loss is not "
                          "recoverable); use --sequential or kl_warmup = 0")
    if models.spec(c.model).init is not None or c.weight_decay or is_corpus_spec(c.data):
        # stacking knows plain MLPs, no data-dependent start (NVDM's unigram bias), no weight decay
        # and no sparse word counts; each model trained alone gets all of them right
        raise ConfigError(f"{c.model} on {c.data}{' with weight_decay' if c.weight_decay else ''} cannot be "
                          "trained stacked; use --sequential")


def _model_losses(bound: objectives.Bound, beta: float) -> torch.Tensor:
    """(M,) each model's training loss, the number its solo run would log, from a stacked Bound ((M, B) values)."""
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


def _copy_into(model: torch.nn.Module, params: dict[str, torch.Tensor], m: int) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name][m])


def fit_group(configs: Sequence[cfg.Config], datas: Sequence[ImageData], *, how: str = "auto",
              progress: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """Train M models as one stacked model; write each one's run folder (config.out, already claimed)."""
    c0, size = configs[0], len(configs)
    device = runs.resolve_device(c0.device)
    estimator = models.estimator_for(c0)
    objective = objectives.get(estimator)
    dynamic_binarization = runs.binarizes(c0)
    dynamic_dequantization = runs.dequantizes(c0, datas[0])

    # each model starts as its solo run would: seeded, built, then its own random stream
    solo, gens, optimizers = [], [], []
    for c, data in zip(configs, datas):
        seed_everything(c.seed)
        solo.append(models.build(c, data.shape).to(device))
        gens.append(_generator(device))
        optimizers.append(make_optimizer(solo[-1], c.lr))
    params = stack.stack_parameters(solo)  # {name: (M, *shape)}
    net = stack.stacked_model(solo[0], params, how)
    kinds = {type(ch).__name__ for ch in net.children()}
    log(f"stacking {size} models ({'batched matmuls' if kinds == {'LinearStack'} else 'vmap'})")
    adam = stack.StackedAdam(params, [c.lr for c in configs], optimizers[0])
    # reparameterisation noise is drawn for all models at once, (K, M, B, Dz) per step, from the
    # global stream, seeded from the group's seeds so that a sweep is reproducible
    torch.manual_seed(int(np.random.SeedSequence([c.seed for c in configs]).generate_state(1)[0]))

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
            vals[s] = runs.eval_inputs(c0, d, "val", device) if len(d.val) else None
    scale = datas[0].scale
    steps_per_epoch = math.ceil(n / c0.batch_size)
    warmup_steps = c0.kl_warmup * steps_per_epoch
    meta = {"shape": json.dumps(list(datas[0].shape))}

    score_key = VALIDATION.get(estimator, ("sgvb-b", "val_elbo"))[1]  # as train.fit logs it
    dirs = [Path(c.out) for c in configs]
    state = [{"epoch": 0, "step": 0, "best_val": -math.inf, "bad_epochs": 0, "stopped_early": False}
             for _ in configs]
    diverged: list[int | None] = [None] * size
    active = [True] * size
    for c, d in zip(configs, dirs):
        (d / "config.toml").write_text(cfg.to_toml(c))
        (d / "metrics.jsonl").write_text("")

    log_every = max(1, c0.epochs // 20)
    bar = tqdm(total=c0.epochs * steps_per_epoch, desc=f"sweep x{size}", unit="step", disable=not progress,
               dynamic_ncols=True)
    step = 0
    for epoch in range(1, c0.epochs + 1):
        if not any(active):
            break
        _sync(device)
        start = time.perf_counter()
        # each model's data order is its solo run's (batches.ResidentBatches with one shard)
        perms = torch.stack([torch.randperm(n, generator=order_generator(c.seed, epoch, 0, device), device=device)
                             for c in configs]) + offset  # (M, n)
        loss_sum = torch.zeros(size, device=device)
        for i in range(steps_per_epoch):
            idx = perms[:, i * c0.batch_size:(i + 1) * c0.batch_size]  # (M, b)
            x = rows(train_x, idx.reshape(-1), scale).view(size, idx.shape[1], -1)  # (M, b, D)
            if dynamic_binarization:  # each model re-binarizes its own batch from its own stream
                x = torch.stack([binarize(x[m], gens[m]) for m in range(size)])
            elif dynamic_dequantization:
                x = torch.stack([dequantize(x[m], scale, gens[m]) for m in range(size)])
            beta = kl_weight(step, warmup_steps)
            bound = objective(net, x, k=c0.k, beta=beta)  # value (M, b)
            adam.zero_grad()
            (bound.loss * size).backward()  # loss is the mean over models; each slice gets its own gradient
            adam.step(active)
            loss_sum.add_(_model_losses(bound, beta), alpha=idx.shape[1])
            step += 1
            bar.update(1)
        _sync(device)
        train_seconds = time.perf_counter() - start

        losses = (loss_sum / n).tolist()
        for m in [m for m in range(size) if active[m]]:
            st = state[m]
            if not math.isfinite(losses[m]):
                active[m], diverged[m] = False, epoch
                _write(bar, log, f"{dirs[m].name}: diverged at epoch {epoch} (non-finite loss); it stops, the "
                                 f"others go on; try a smaller --lr")
                continue
            _copy_into(solo[m], params, m)
            row = {"epoch": epoch, "train_loss": losses[m], "train_seconds": train_seconds}
            val_x = vals[slots[m]]
            if val_x is not None:
                if score_key == "val_iwae":
                    row["val_elbo"] = validation_score(solo[m], val_x, "sgvb-b")
                row[score_key] = score = validation_score(solo[m], val_x, estimator, k=configs[m].k)
                if score > st["best_val"]:
                    st["best_val"], st["bad_epochs"] = score, 0
                    save_weights(dirs[m] / "model.safetensors", solo[m], meta)
                else:
                    st["bad_epochs"] += 1
                patience = configs[m].patience
                st["stopped_early"] = bool(patience and st["bad_epochs"] >= patience)
            else:
                save_weights(dirs[m] / "model.safetensors", solo[m], meta)
            st["epoch"], st["step"] = epoch, step
            with (dirs[m] / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
            adam.model_state(m, solo[m], optimizers[m])
            with torch.random.fork_rng(devices=[]):  # the checkpoint carries this model's own stream
                if device.type == "cpu":
                    torch.set_rng_state(gens[m].get_state())
                save_checkpoint(dirs[m] / "checkpoint.safetensors", solo[m], optimizers[m], st)
            if configs[m].save_every and epoch % configs[m].save_every == 0:  # as train.fit keeps them
                (dirs[m] / "epochs").mkdir(exist_ok=True)
                save_weights(dirs[m] / "epochs" / f"epoch-{epoch:03d}.safetensors", solo[m], meta)
            if st["stopped_early"]:
                active[m] = False  # masked out of every later Adam step
                _write(bar, log, f"{dirs[m].name}: early stopping at epoch {epoch}, no validation improvement "
                                 f"for {patience} epochs")

        if epoch in (1, c0.epochs) or epoch % log_every == 0:
            scores = [state[m]["best_val"] for m in range(size) if diverged[m] is None and state[m]["epoch"]]
            text = (f"  best {score_key.replace('_', ' ')} max {max(scores):.3f} median {statistics.median(scores):.3f}"
                    f" min {min(scores):.3f}") if scores and vals[slots[0]] is not None else ""
            _write(bar, log, f"epoch {epoch:3d}  training {sum(active)}/{size}{text}  ({train_seconds:.2f} s)")
    bar.close()

    for m in range(size):
        if diverged[m] is None and not (dirs[m] / "model.safetensors").exists():  # zero epochs: initial weights
            save_weights(dirs[m] / "model.safetensors", solo[m], meta)
    return [{"epochs": st["epoch"], "best_val": st["best_val"] if math.isfinite(st["best_val"]) else None, "stopped_early": st["stopped_early"],
             "diverged_at": diverged[m]} for m, st in enumerate(state)]


def _claim_root(root: Path, overwrite: bool) -> None:
    """Make the sweep folder; an existing sweep is replaced only with overwrite, anything else never."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if not (root / "sweep.json").is_file():
            raise VaelabError(f"{root} exists and is not a vaelab sweep folder; refusing to write into it")
        if not overwrite:
            raise VaelabError(f"{root} already holds a sweep; use --overwrite to replace it")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def default_root(c: cfg.Config, root: str | Path = "runs") -> Path:
    """runs/sweep-<model>-<data>-NNN, the first number not taken."""
    return runs.first_free(Path(root), f"sweep-{c.model}-{c.data.split(':')[0]}")


def _write_summary(root: Path, members: Sequence[Member], results: list[dict], group_of: list[dict]) -> None:
    runs_out = [{"name": m.name, "values": {k: list(v) if isinstance(v, tuple) else v for k, v in m.values.items()},
                 **g, **r} for m, r, g in zip(members, results, group_of)]
    (root / "sweep.json").write_text(json.dumps({"runs": runs_out}, indent=2) + "\n")


def sweep(config: cfg.Config | str | Path | None = None, *, seeds: int | None = None,
          grid: dict[str, Sequence[Any]] | Sequence[str] | None = None, out: str | Path | None = None,
          overwrite: bool = False, sequential: bool = False, finish: bool = False, progress: bool = False,
          log: Callable[[str], None] = print, **overrides: Any) -> Path:
    """Train every model of a sweep; returns the sweep folder (one run folder per model inside)."""
    base = make_config(config, **overrides)
    if base.out is not None and out is None:
        out = base.out
    grid = parse_grid(grid) if isinstance(grid, (list, tuple)) else grid
    members = plan(base.replace(out=None), seeds=seeds, grid=grid)
    parts = groups(members, sequential)

    # check everything that can fail before anything is written: devices, data, models
    cache: dict[tuple, ImageData] = {}
    datas = []
    for m in members:
        c = m.config
        runs.resolve_device(c.device)
        key = (c.data, c.data_dir, c.val_fraction, c.image_size, c.seed)
        if key not in cache:
            cache[key] = runs.load_data(c)
        datas.append(cache[key])
        models.build(c, datas[-1].shape)
        models.estimator_for(c)
    for part in parts:
        if len(part) > 1:
            _check_stackable(members[part[0]].config)

    root = Path(out) if out is not None else default_root(base)
    _claim_root(root, overwrite)
    members = [dataclasses.replace(m, config=m.config.replace(out=str(root / m.name))) for m in members]
    group_of = [{"group": gi, "group_size": len(part)} for i in range(len(members))
                for gi, part in enumerate(parts) if i in part]
    results: list[dict] = [{} for _ in members]
    _write_summary(root, members, results, group_of)  # marks the folder as a sweep from the start
    for m in members:
        runs.claim(Path(m.config.out), overwrite=False)

    for gi, part in enumerate(parts):
        names = ", ".join(members[i].name for i in part)
        log(f"group {gi + 1}/{len(parts)}: {len(part)} model{'s' * (len(part) > 1)} ({names})")
        start = time.perf_counter()
        if len(part) == 1:
            i = part[0]
            try:
                r = fit(members[i].config, members[i].config.out, data=datas[i], progress=progress, log=log)
                best = r.best_val if math.isfinite(r.best_val) else None
                results[i] = {"epochs": r.epochs_done, "best_val": best, "stopped_early": r.stopped_early,
                              "diverged_at": None}
            except VaelabError as e:  # one failed model does not stop the others
                log(f"{members[i].name}: {e}")
                results[i] = {"error": str(e)}
        else:
            for i, r in zip(part, fit_group([members[i].config for i in part], [datas[i] for i in part],
                                            progress=progress, log=log)):
                results[i] = r
        for i in part:
            results[i]["group_seconds"] = time.perf_counter() - start
        _write_summary(root, members, results, group_of)

    failed = [m.name for m, r in zip(members, results) if r.get("error") or r.get("diverged_at")]
    for m, r, data in zip(members, results, datas):
        if finish and m.name not in failed:
            log(f"evaluating {m.name} on the test split, plots and report")
            finish_run(m.config.out, data=data, progress=progress, log=lambda s: None)
            ev = json.loads((Path(m.config.out) / "eval.json").read_text())
            r["test"] = {k: ev[k] for k in ("elbo", "iwae", "nll", "k", "recon") if k in ev}
    _write_summary(root, members, results, group_of)
    _log_table(members, results, log)
    if failed:
        raise VaelabError(f"{len(failed)} of {len(members)} models failed ({', '.join(failed)}); "
                          f"the others are complete in {root} (see sweep.json)")
    return root


def _log_table(members: Sequence[Member], results: list[dict], log: Callable[[str], None]) -> None:
    width = max(len(m.name) for m in members)
    has_test = any("test" in r for r in results)
    head = f"{'run':<{width}}  {'epochs':>6}  {'best val':>10}" + (f"  {'test ELBO':>10}  {'NLL-k':>10}" if has_test else "")
    log(head)
    for m, r in zip(members, results):
        if "error" in r:
            log(f"{m.name:<{width}}  error: {r['error']}")
            continue
        best = f"{r['best_val']:>10.3f}" if r.get("best_val") is not None else f"{'-':>10}"
        line = f"{m.name:<{width}}  {r['epochs']:>6}  {best}"
        if "test" in r:
            t = r["test"]
            line += "".join(f"  {t[k]:>10.3f}" if k in t else f"  {'-':>10}" for k in ("elbo", "nll"))
        log(line + ("  (stopped early)" if r.get("stopped_early") else "")
            + (f"  (diverged at epoch {r['diverged_at']})" if r.get("diverged_at") else ""))
