"""Checkpoints as safetensors files: weights, optimizer state and every RNG state, never pickle.

One file holds all tensors; the non-tensor state (epoch, optimizer hyper-parameters, Python and
NumPy RNG scalars, the config) rides along as JSON in the safetensors metadata. Files are written
to a temporary name and renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as st_save
from torch import nn

from ..atomic import atomic_write
from ..errors import CheckpointError
from ..training import averaging
from .checkpoint_check import check_groups, check_optim, check_rng, check_state, check_weights
from .json_text import dumps
from .weights_file import read_header, read_tensors, read_tensors_sha256


def _cpu_state(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as contiguous CPU tensors, each name under prefix."""
    return {prefix + k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_weights(path: str | Path, model: nn.Module, meta: dict[str, str] | None = None) -> None:
    """Model weights alone (what `evaluate`, `plot` and the API load)."""
    atomic_write(path, st_save(_cpu_state("", model), metadata=meta))


def load_weights(path: str | Path, model: nn.Module) -> str:
    """Load weights into model: every name, shape and dtype checked from the file's header before a tensor is read,
    and every value checked finite before the model is touched. Returns the SHA-256 of the file the weights came
    from (the version loaded, whatever replaces it meanwhile)."""
    path = Path(path)
    header, _ = read_header(path)
    other = ("optim.", "rng.", averaging.PREFIX)  # a checkpoint's trained weights are its model.* tensors
    names = {k.removeprefix("model."): k for k in header if not k.startswith(other)}
    check_weights(path, model, {own: header[k] for own, k in names.items()})
    tensors, sha256 = read_tensors_sha256(path, names.values())
    weights = {own: tensors[k] for own, k in names.items()}
    check_weights(path, model, weights)  # now the values
    model.load_state_dict(weights)
    return sha256


def read_meta(path: str | Path) -> dict[str, str]:
    """The string metadata stored beside the tensors (the tensors are not read)."""
    return read_header(Path(path))[1]


def trained_epochs(path: str | Path) -> int:
    """The epochs a training checkpoint has committed, from its metadata alone (no tensor is read)."""
    meta = read_meta(path)  # the header alone, checked before it is trusted (runs/weights_file.py)
    try:
        epoch = json.loads(meta["state"])["epoch"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a readable vaelab training checkpoint ({e})") from None
    if type(epoch) is not int or epoch < 0:
        raise CheckpointError(f"{path}: its training state has no valid epoch ({epoch!r})")
    return epoch


def read_shape(path: str | Path) -> tuple[int, ...]:
    """The per-example data shape recorded beside the weights (so a model can be rebuilt without its data)."""
    try:
        shape = json.loads(read_meta(path)["shape"])
    except (KeyError, json.JSONDecodeError):
        shape = None
    if not (isinstance(shape, list) and 1 <= len(shape) <= 3
            and all(type(v) is int and v >= 1 for v in shape) and math.prod(shape) <= 2**31):
        raise CheckpointError(f"{path}: does not record a valid data shape (a list of 1 to 3 positive sizes)")
    return tuple(shape)


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG the training loop may touch: torch CPU and CUDA, NumPy, Python."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss = random.getstate()
    meta = {"numpy": [name, pos, has_gauss, cached], "python": [version, list(internal), gauss]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of rng_state()."""
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
                    average: nn.Module | None = None) -> None:
    """Everything needed to continue training bit-exactly
    (average: the weights' moving average, training/averaging.py)."""
    tensors = _cpu_state("model.", model)
    if average is not None:
        tensors.update(_cpu_state(averaging.PREFIX, average))
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt["state"].items():
        for key, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{key}"] = v.detach().cpu().contiguous()
            else:
                opt_scalars.setdefault(str(pid), {})[key] = v
    rng_t, rng_m = rng_state()
    tensors.update({k: v.cpu().contiguous() for k, v in rng_t.items()})
    # best_val starts at -inf, which JSON cannot hold: saved as null (check_state reads it back)
    state = state | {"best_val": None if state["best_val"] == -math.inf else state["best_val"]}
    meta = {key: dumps(value, f"{path}: {key}") for key, value in (
        ("state", state), ("param_groups", opt["param_groups"]), ("optim_scalars", opt_scalars), ("rng", rng_m))}
    atomic_write(path, st_save(tensors, metadata=meta))


def _check_tensors(path: Path, tensors: dict[str, torch.Tensor], scalars: Any, rng_meta: Any, model: nn.Module,
                   optimizer: torch.optim.Optimizer, average: nn.Module | None) -> dict[str, dict[str, torch.Tensor]]:
    """A checkpoint's tensors (meta tensors: shapes and dtypes only) against the model and optimizer, by part."""
    parts = ("model.", "optim.", "rng.", averaging.PREFIX)
    unknown = sorted(k for k in tensors if not k.startswith(parts))
    if unknown:
        raise CheckpointError(f"{path}: unexpected tensor {unknown[0]}")
    part = {p: {k: v for k, v in tensors.items() if k.startswith(p)} for p in parts}
    check_weights(path, model, {k[6:]: v for k, v in part["model."].items()})
    check_optim(path, part["optim."], scalars, optimizer)
    check_rng(path, part["rng."], rng_meta)
    averaging.check_average(path, average, part[averaging.PREFIX])
    return part


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    average: nn.Module | None = None) -> dict[str, Any]:
    """Restore model, optimizer, RNGs (and the weights' average) from save_checkpoint(); return the training state."""
    path = Path(path)
    header, meta = read_header(path)
    try:
        state, groups, scalars, rng_meta = (json.loads(meta[k]) for k in ("state", "param_groups", "optim_scalars",
                                                                           "rng"))
    except KeyError as e:
        raise CheckpointError(f"{path}: not a vaelab training checkpoint (metadata {e} missing)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({e})") from None
    check_groups(path, groups, optimizer)
    check_state(path, state)
    # check everything before anything is loaded: a wrong-shaped Adam moment corrupts memory in the fused step.
    # First the header's names, shapes and dtypes (nothing of a file that does not fit is read), then the values.
    _check_tensors(path, header, scalars, rng_meta, model, optimizer, average)
    part = _check_tensors(path, read_tensors(path, header), scalars, rng_meta, model, optimizer, average)
    averaging.load_average(path, average, part[averaging.PREFIX])  # checks, then loads
    model.load_state_dict({k[6:]: v for k, v in part["model."].items()})
    device = next(model.parameters()).device
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in part["optim."].items():
        _, pid, key = k.split(".", 2)
        opt_state.setdefault(int(pid), {})[key] = v.to(device) if key != "step" else v
    for pid, st in scalars.items():
        opt_state.setdefault(int(pid), {}).update(st)
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    set_rng_state(part["rng."], rng_meta)
    return state
