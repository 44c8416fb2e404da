"""The schema of a training checkpoint, checked in full before any of it touches torch or NumPy.

A tensor of the wrong shape handed to the fused Adam step writes past its buffer, and a short RNG
state makes torch or NumPy raise deep inside; so every tensor and every JSON value is compared with
what this model and optimizer would save (checkpoint.save_checkpoint) first. Each mismatch is one
CheckpointError line naming the file and the entry.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError

ADAM_TENSORS = ("exp_avg", "exp_avg_sq", "step")  # + max_exp_avg_sq with amsgrad
MT_KEYS = 624  # Mersenne Twister state words (NumPy's and Python's)
STATE_INTS = ("epoch", "step", "bad_epochs")
# Adam's flags that change what it computes or keeps: loaded from a file, amsgrad asks for a max_exp_avg_sq the state
# lacks, differentiable fails the fused step, maximize climbs the loss. The optimizer's own must stand.
FIXED_FLAGS = ("amsgrad", "maximize", "differentiable", "decoupled_weight_decay")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_state(path: Path, state: Any) -> dict[str, Any]:
    """The training state: epoch/step/bad_epochs ints >= 0, best_val a float or -inf, stopped_early a bool.

    best_val is saved as null while it is -inf (strict JSON has no infinity; earlier files hold -Infinity):
    the state returned has -inf again."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: metadata 'state' must be an object, found {type(state).__name__}")
    for key in STATE_INTS:
        if not _is_int(state.get(key)) or state[key] < 0:
            raise CheckpointError(f"{path}: state {key} must be an integer >= 0, found {state.get(key, 'nothing')!r}")
    best = state.get("best_val", "nothing")
    if best is None:
        state["best_val"] = best = -math.inf
    if not (_is_num(best) or best == -math.inf):
        raise CheckpointError(f"{path}: state best_val must be a finite number or null, found {best!r}")
    if not isinstance(state.get("stopped_early"), bool):
        raise CheckpointError(f"{path}: state stopped_early must be true or false, found "
                              f"{state.get('stopped_early', 'nothing')!r}")
    return state


def _same_kind(own: Any, v: Any) -> bool:
    """A saved hyper-parameter has the type of the optimizer's own (bool, number, tuple of numbers, None)."""
    if isinstance(own, bool):
        return isinstance(v, bool)
    if _is_int(own) or isinstance(own, float):
        return _is_num(v)
    if isinstance(own, (tuple, list)):
        return isinstance(v, list) and len(v) == len(own) and all(_is_num(x) for x in v)
    if own is None:
        return v is None or isinstance(v, bool)
    return type(v) is type(own)


def check_groups(path: Path, groups: Any, optimizer: torch.optim.Optimizer) -> None:
    """param_groups: as many groups as the optimizer's, the same parameter ids and keys, values of the same kind,
    and the FIXED_FLAGS the optimizer's own."""
    own = optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(own):
        raise CheckpointError(f"{path}: param_groups must be a list of {len(own)} groups")
    for i, (g, o) in enumerate(zip(groups, own)):
        if not isinstance(g, dict) or set(g) != set(o):
            raise CheckpointError(f"{path}: param_groups[{i}] must have the keys {', '.join(sorted(o))}")
        if g["params"] != o["params"]:
            raise CheckpointError(f"{path}: param_groups[{i}] holds parameters {g['params']!r}, the model's "
                                  f"optimizer has {o['params']!r}")
        for key, v in g.items():
            if key != "params" and not _same_kind(o[key], v):
                raise CheckpointError(f"{path}: param_groups[{i}].{key} = {v!r} is not like {o[key]!r}")
            if key in FIXED_FLAGS and v != o[key]:
                raise CheckpointError(f"{path}: param_groups[{i}].{key} = {v!r}, the optimizer's is {o[key]!r} "
                                      f"(it changes what Adam computes and keeps)")


def _params(optimizer: torch.optim.Optimizer) -> dict[int, torch.Tensor]:
    """Parameter id (as state_dict numbers them) -> parameter."""
    flat = [p for g in optimizer.param_groups for p in g["params"]]
    return dict(enumerate(flat))


def check_optim(path: Path, tensors: dict[str, torch.Tensor], scalars: Any, optimizer: torch.optim.Optimizer) -> None:
    """optim.<id>.<key> tensors: known ids, complete Adam states, moments shaped and typed like their parameter."""
    params = _params(optimizer)
    amsgrad = any(g.get("amsgrad") for g in optimizer.param_groups)
    wanted = set(ADAM_TENSORS) | ({"max_exp_avg_sq"} if amsgrad else set())
    seen: dict[int, set[str]] = {}
    for name, t in tensors.items():
        _, pid, key = (name.split(".", 2) + ["", ""])[:3]
        if not pid.isdigit() or int(pid) not in params or key not in wanted:
            raise CheckpointError(f"{path}: unexpected optimizer tensor {name} (the optimizer has parameter ids "
                                  f"0..{len(params) - 1} and state {', '.join(sorted(wanted))})")
        p = params[int(pid)]
        if key == "step":
            ok = t.shape == () and t.dtype == torch.float32 and (t.is_meta or bool(torch.isfinite(t)) and float(t) >= 0)
            want = "a float32 scalar >= 0"
        else:
            ok = t.shape == p.shape and t.dtype == p.dtype
            want = f"{p.dtype} {tuple(p.shape)}"
        if not ok:
            raise CheckpointError(f"{path}: optimizer tensor {name} is {t.dtype} {tuple(t.shape)}, must be {want}")
        check_finite(path, f"optimizer tensor {name}", t)
        seen.setdefault(int(pid), set()).add(key)
    for pid, keys in sorted(seen.items()):
        if keys != wanted:
            raise CheckpointError(f"{path}: optimizer state of parameter {pid} "
                                  f"lacks {', '.join(sorted(wanted - keys))}")
    if not isinstance(scalars, dict) or any(not isinstance(v, dict) or not all(_is_num(x) for x in v.values())
                                            for v in scalars.values()):
        raise CheckpointError(f"{path}: optim_scalars must map parameter ids to objects of numbers")
    for pid, st in scalars.items():
        if not pid.isdigit() or int(pid) not in params or set(st) & wanted - {"step"}:
            raise CheckpointError(f"{path}: optim_scalars has an entry {pid!r} the optimizer cannot take")


def check_rng(path: Path, tensors: dict[str, torch.Tensor], meta: Any) -> None:
    """rng.torch / rng.numpy / rng.cuda.<i> tensors and the NumPy and Python RNG scalars."""
    torch_state = torch.get_rng_state()
    t = tensors.get("rng.torch")
    if t is None or t.dtype != torch_state.dtype or t.shape != torch_state.shape:
        found = "nothing" if t is None else f"{t.dtype} {tuple(t.shape)}"
        raise CheckpointError(f"{path}: tensor rng.torch must be {torch_state.dtype} {tuple(torch_state.shape)}, "
                              f"found {found}")
    keys = tensors.get("rng.numpy")
    if keys is None or keys.dtype != torch.int64 or keys.shape != (MT_KEYS,) \
            or not keys.is_meta and bool((keys < 0).any() | (keys >= 2**32).any()):
        found = "nothing" if keys is None else f"{keys.dtype} {tuple(keys.shape)}"
        raise CheckpointError(f"{path}: tensor rng.numpy must be {MT_KEYS} int64 words in [0, 2**32), found {found}")
    for name, t in tensors.items():
        if name.startswith("rng.cuda."):
            if not name[9:].isdigit() or t.dtype != torch.uint8 or t.ndim != 1:
                raise CheckpointError(f"{path}: tensor {name} must be a uint8 CUDA RNG state")
            i = int(name[9:])
            if torch.cuda.is_available() and i < torch.cuda.device_count() \
                    and t.shape != torch.cuda.get_rng_state(i).shape:
                raise CheckpointError(f"{path}: tensor {name} has {t.numel()} bytes, this GPU's state has "
                                      f"{torch.cuda.get_rng_state(i).numel()}")
        elif name not in ("rng.torch", "rng.numpy"):
            raise CheckpointError(f"{path}: unexpected RNG tensor {name}")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: metadata 'rng' must be an object")
    np_meta = meta.get("numpy")
    if not (isinstance(np_meta, list) and len(np_meta) == 4 and np_meta[0] == "MT19937" and _is_int(np_meta[1])
            and 0 <= np_meta[1] <= MT_KEYS and np_meta[2] in (0, 1) and not isinstance(np_meta[2], bool)
            and _is_num(np_meta[3])):
        raise CheckpointError(f"{path}: rng numpy must be [\"MT19937\", pos 0..{MT_KEYS}, has_gauss 0|1, cached float]")
    py = meta.get("python")
    version = random.getstate()[0]
    if not (isinstance(py, list) and len(py) == 3 and py[0] == version and isinstance(py[1], list)
            and len(py[1]) == MT_KEYS + 1 and all(_is_int(v) and 0 <= v < 2**32 for v in py[1])
            and py[1][-1] <= MT_KEYS and (py[2] is None or _is_num(py[2]))):
        raise CheckpointError(f"{path}: rng python must be [{version}, {MT_KEYS + 1} words with a position "
                              f"0..{MT_KEYS} last, gauss float or null]")


def check_weights(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Every weight present, nothing extra, each of the model's shape and a floating dtype it can take."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise CheckpointError(f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, t in tensors.items():
        if t.shape != own[name].shape:
            raise CheckpointError(f"{path}: weight {name} has shape {tuple(t.shape)}, the model wants "
                                  f"{tuple(own[name].shape)}")
        if t.dtype != own[name].dtype:
            raise CheckpointError(f"{path}: weight {name} is {t.dtype}, the model wants {own[name].dtype}")
        check_finite(path, f"weight {name}", t)


def check_finite(path: Path, what: str, t: torch.Tensor) -> None:
    """A floating tensor holds no NaN or infinity (they would turn every bound, and every later step, into NaN);
    a meta tensor (a file's header read, its data not yet) has no values to check."""
    if t.is_floating_point() and not t.is_meta and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise CheckpointError(f"{path}: {what} holds {bad} NaN or infinite value{'s' if bad > 1 else ''} "
                              f"of {t.numel()} (damaged weights: every bound computed with them would be NaN)")
