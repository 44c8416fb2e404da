"""`vaelab sweep`: many small independent models trained at once on one device.

    vaelab.sweep(seeds=8, data="digits", epochs=50)                  # 8 seeds of one config
    vaelab.sweep(grid={"lr": [1e-3, 3e-4], "latent_dim": [2, 20]})    # 4 configs, 2 stacked groups

plan() expands seeds and grid values into one config per model. Models whose configs differ only
in FREE_KEYS have parameters of the same shapes and the same schedule; each such group trains as
one stacked model (sweeps/stack.py): one batched forward/backward and one Adam call per step for all of
its models. A group of one is trained by the ordinary trainer (training/session.py fit). Every model gets its
own run folder under the sweep folder, with the files a solo run writes (what it keeps of its data too, so
it stands alone: runs/kept_data.py); a conditional VAE's members record their label width as train does;
see docs/SWEEPS.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence

from ..api import finish_run
from ..config import schema as cfg
from ..data import ImageData
from ..errors import AlreadyThere, ConfigError, FolderInUse, VaelabError
from ..logs import info
from ..runs import claims, inputs, kept_data
from ..runs.folder import RunFolder
from ..runs.folder_lock import lock
from ..runs.json_text import write_json
from ..runs.lock_owner import lock_owner
from ..runs.resolve import Resolved
from ..runs.resolve import device as resolve_device
from ..runtime import parallel, same_folder
from ..training import session
from ..training.session import make_config
from .share import Piece, share
from .stacked import check_stackable, fit_group

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


MAX_MODELS = 10_000  # run folders per sweep (claims.first_free numbers at most as many)


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """`KEY=V1,V2,...` items -> {key: [values]} (values coerced later, against the config)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"grid wants KEY=V1,V2,..., got {item!r}")
        if key in grid:
            raise ConfigError(f"grid names {key!r} twice")
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
        raise ConfigError("a sweep needs seeds N and/or grid KEY=V1,V2,...")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    if seeds is not None and "seed" in grid:
        raise ConfigError("give the seeds with seeds or with grid seed=..., not both")
    if "out" in grid:
        raise ConfigError("out cannot be swept: the sweep names each run's folder")
    axes: dict[str, list[Any]] = {}
    for key, raw in grid.items():
        if len(raw) == 0 or any(isinstance(v, str) and not v for v in raw):
            raise ConfigError(f"grid {key}: every value must be non-empty, got {','.join(map(str, raw))!r}")
        try:
            values = [getattr(cfg.from_dict({key: v}, base), key) for v in raw]
        except ConfigError as e:
            raise ConfigError(f"grid {key}: {e}") from None
        dupes = sorted({_label(v) for v in values if values.count(v) > 1})
        if dupes:
            raise ConfigError(f"grid {key}: {', '.join(dupes)} given more than once")
        axes[key] = values
    models_wanted = math.prod(map(len, axes.values())) * (seeds or 1)
    if models_wanted > MAX_MODELS:  # checked before a list of them is made
        what = " x ".join(["the grid"] * bool(axes) + [f"seeds = {seeds}"] * bool(seeds))
        raise ConfigError(f"{what}: {models_wanted} models, more than the {MAX_MODELS} a sweep trains "
                          "(one run folder each)")
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


def _claim_root(root: Path, overwrite: bool) -> int:
    """Make and lock the sweep folder (returns the descriptor holding the lock: a `train --out` of the same
    folder refuses while it is held); an existing sweep is replaced only with overwrite, anything else never."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        fd = lock(root)
    except BlockingIOError:
        raise FolderInUse(f"{root} is in use by another process{lock_owner(root)} (a sweep or a training run); wait "
                          "for it") from None
    try:
        entries = list(root.iterdir())  # decided under the lock, so two claims of one folder never both win
        if entries:
            if not (root / "sweep.json").is_file():
                raise VaelabError(f"{root} exists and is not a vaelab sweep folder; refusing to write into it")
            if not overwrite:
                raise AlreadyThere(f"{root} already holds a sweep; overwrite=True replaces it", root, "sweep")
            for run in (p for p in entries if p.is_dir() and not p.is_symlink()):
                if RunFolder(run).in_use():  # e.g. `train --resume` of one of its runs
                    raise FolderInUse(f"{run} is being trained by another process{lock_owner(run)}; the sweep is not "
                                      "replaced")
            for p in entries:  # the folder itself stays: the lock is on it
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
    except BaseException:
        os.close(fd)
        raise
    return fd


def default_root(c: cfg.Config, root: str | Path = "runs") -> Path:
    """runs/sweep-<model>-<data>-NNN, the first number not taken."""
    return claims.first_free(Path(root), f"sweep-{c.model}-{c.data.split(':')[0]}")


def _write_summary(root: Path, members: Sequence[Member], results: list[dict], group_of: list[dict]) -> None:
    runs_out = [{"name": m.name, "values": {k: list(v) if isinstance(v, tuple) else v for k, v in m.values.items()},
                 **g, **r} for m, r, g in zip(members, results, group_of)]
    write_json(root / "sweep.json", {"runs": runs_out})


def sweep(config: cfg.Config | str | Path | None = None, *, seeds: int | None = None,
          grid: dict[str, Sequence[Any]] | Sequence[str] | None = None, out: str | Path | None = None,
          overwrite: bool = False, sequential: bool = False, finish: bool = False, progress: bool = False,
          log: Callable[[str], None] = info, outputs: Sequence = (), explorer: bool = True,
          **overrides: Any) -> Path:
    """Train every model of a sweep; returns the sweep folder (one run folder per model inside)."""
    base = kept_data.absolute(make_config(config, **overrides))  # each run names its data alike from anywhere
    if base.out is not None and out is None:
        out = base.out
    grid = parse_grid(grid) if isinstance(grid, (list, tuple)) else grid
    members = plan(base.replace(out=None), seeds=seeds, grid=grid)
    parts = groups(members, sequential)

    root = Path(out) if out is not None else default_root(base)
    members = [dataclasses.replace(m, config=m.config.replace(out=str(root / m.name))) for m in members]  # checked
    # check everything that can fail before anything is written: devices, data, models (training/session.py)
    cache: dict[tuple, ImageData] = {}
    datas, prepared = [], []
    together = {i: len(part) for part in parts for i in part}  # a stacked group trains as one model
    world = parallel.world_from_env()
    if world.distributed and out is None:
        raise VaelabError("under torchrun, name the sweep folder (out)")  # every process must name the same one
    failure = None
    try:  # what fails on one node alone (data missing at its path there) stops every process (parallel.settle)
        for i, m in enumerate(members):
            c = m.config
            key = (c.data, c.data_dir, c.val_fraction, c.image_size, c.seed, c.channels, c.conditional, c.classes)
            if key not in cache:
                cache[key] = inputs.load_data(c)
            datas.append(cache[key])
            c = inputs.conditioned(c, datas[-1])  # a conditional run records the width of its one-hot labels
            members[i] = dataclasses.replace(m, config=c)
            # each model trains in one process, alone (no gradient is shared): its batches are one process's
            prepared.append(session.prepare(c, datas[-1], parallel.World(), together=together[i]))
        for part in parts:
            if len(part) > 1:
                check_stackable(members[part[0]].config)
        mine = share(parts, world.size)[world.rank]  # under torchrun: this process's models (sweeps/share.py)
        device = resolve_device(base.device)
    except Exception as e:
        failure = e
    parallel.settle(world, failure)
    device = parallel.join(world, device)  # the processes meet here, every check passed
    # every process writes its models' runs: one sweep folder, seen by every node (runtime/same_folder.py)
    same_folder.shared(root, world, "every process writes the runs of its models there")

    group_of = [{"group": gi, "group_size": len(part)} for i in range(len(members))
                for gi, part in enumerate(parts) if i in part]
    with ExitStack() as held:  # the sweep folder and every run in it are process 0's until the sweep ends
        held.callback(parallel.leave)
        if world.writes:
            _claim_all(held, root, members, datas, group_of, overwrite, world, device)
        elif not parallel.agree(True, world, device):  # process 0 says whether it could claim them
            raise VaelabError(f"process 0 could not claim {root}")
        if world.distributed:
            if world.writes:
                log(f"{world.size} processes share the {len(members)} models; process 0 trains "
                    f"{sum(len(p) for _, p in mine)}")
            else:
                log, progress = (lambda s: None), False  # process 0 alone logs
        with parallel.alone():  # each model trains in one process, with nothing shared (no DDP)
            results = _train_share(root, members, parts, mine, datas, prepared, group_of, finish=finish,
                                   progress=progress, log=log, outputs=outputs, explorer=explorer,
                                   write=not world.distributed)
        every = parallel.gather_json(results, world, device)  # {member index: result} from each process
        results = [{} for _ in members]
        for part in every:
            for i, r in part.items():
                results[int(i)] = r
        if world.writes:
            _write_summary(root, members, results, group_of)
            _log_table(members, results, log)
        failed = [m.name for m, r in zip(members, results) if r.get("error") or r.get("diverged_at")]
        if failed:
            raise VaelabError(f"{len(failed)} of {len(members)} models failed ({', '.join(failed)}); "
                              f"the others are complete in {root} (see sweep.json)")
        return root


def _claim_all(held: ExitStack, root: Path, members: list[Member], datas: list[ImageData], group_of: list[dict],
               overwrite: bool, world: parallel.World, device) -> None:
    """Process 0 claims the sweep folder and every run in it (the others learn whether it could) and writes what
    each run keeps of its data; under torchrun the others write into runs it holds."""
    try:
        held.callback(os.close, _claim_root(root, overwrite))  # after the names are (config.toml must hold each one)
        _write_summary(root, members, [{} for _ in members], group_of)  # marks the folder as a sweep from the start
        for m in members:
            held.enter_context(claims.claim(Path(m.config.out), overwrite=False))
    except VaelabError:
        parallel.agree(False, world, device)
        raise
    parallel.agree(True, world, device)
    for m, data in zip(members, datas):  # each run's data fingerprint and view, as train keeps them (runs/kept_data.py)
        session.keep_data(m.config.out, m.config, data)


def _train_share(root: Path, members: list[Member], parts: list[list[int]], mine: list[Piece],
                 datas: list[ImageData], prepared: list[Resolved], group_of: list[dict], *, finish: bool,
                 progress: bool, log: Callable[[str], None], outputs: Sequence, explorer: bool,
                 write: bool) -> dict[int, dict]:
    """Train this process's pieces of groups, then (finish) evaluate every model of them that did not fail;
    {member index: result}. `write`: sweep.json after each group (one process: it holds every result)."""
    results: dict[int, dict] = {}
    for gi, piece in mine:
        part = parts[gi]
        names = ", ".join(members[i].name for i in piece)
        some = f" ({len(piece)} of its {len(part)})" if len(piece) < len(part) else ""
        log(f"group {gi + 1}/{len(parts)}{some}: {len(piece)} model{'s' * (len(piece) > 1)} ({names})")
        start = time.perf_counter()
        if len(part) == 1:
            i = part[0]
            try:
                r = session.fit(prepared[i], datas[i], progress=progress, log=log, outputs=outputs)
                best = r.best_val if math.isfinite(r.best_val) else None
                results[i] = {"epochs": r.epochs_done, "best_val": best, "stopped_early": r.stopped_early,
                              "diverged_at": None}
            except VaelabError as e:  # one failed model does not stop the others
                log(f"{members[i].name}: {e}")
                results[i] = {"error": str(e)}
        else:  # a whole group, or this process's share of it, trained as in the whole group
            for i, r in zip(piece, fit_group([members[i].config for i in piece], [datas[i] for i in piece],
                                             progress=progress, log=log, outputs=outputs,
                                             group_seeds=[members[i].config.seed for i in part],
                                             positions=[part.index(i) for i in piece])):
                results[i] = r
        for i in piece:
            results[i]["group_seconds"] = time.perf_counter() - start
        if write:
            _write_summary(root, members, [results.get(i, {}) for i in range(len(members))], group_of)

    failed = {i for i, r in results.items() if r.get("error") or r.get("diverged_at")}
    for i in sorted(results):
        if finish and i not in failed:
            m = members[i]
            log(f"evaluating {m.name} on the test split, plots and report")
            finish_run(m.config.out, data=datas[i], progress=progress, log=lambda s: None, explorer=explorer)
            ev = RunFolder(m.config.out).history.read_eval() or {}
            results[i]["test"] = {k: ev[k] for k in ("elbo", "iwae", "nll", "k", "recon") if k in ev}
    return results


def _log_table(members: Sequence[Member], results: list[dict], log: Callable[[str], None]) -> None:
    width = max(len(m.name) for m in members)
    has_test = any("test" in r for r in results)
    head = f"{'run':<{width}}  {'epochs':>6}  {'best val':>10}" + (
        f"  {'test ELBO':>10}  {'NLL-k':>10}" if has_test else ""
    )
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
