"""Data-parallel training and evaluation on torch.distributed: `torchrun --nproc_per_node N -m vaelab train ...`
(or `... evaluate RUN`).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; with them present the trainer joins a process group
(gloo on the CPU, nccl on CUDA), wraps the model in DistributedDataParallel, gives each process
its shard of the training data and lets process 0 alone write the run folder. Evaluation gives each
process a contiguous share of the points and gathers the per-point bounds (estimators/evaluation.py).
docs/DISTRIBUTED.md has the command lines.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as torch_dist
from torch import nn

from ..errors import VaelabError


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among `size` processes (size 1: not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def writes(self) -> bool:
        """Only process 0 writes files and logs."""
        return self.rank == 0


_ALONE: ContextVar[bool] = ContextVar("vaelab_alone", default=False)


@contextmanager
def alone() -> Iterator[None]:
    """Within the block this process trains by itself: world_from_env() is one process (a sweep under torchrun
    gives each process its own models, trained with no gradient shared: sweeps/sweep.py)."""
    token = _ALONE.set(True)
    try:
        yield
    finally:
        _ALONE.reset(token)


def world_from_env() -> World:
    """The world torchrun describes in the environment, or a single process (also inside `alone()`)."""
    if _ALONE.get():
        return World()
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise VaelabError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
    return World(rank, size, local)


def meet(world: World) -> None:
    """Join the process group (once), before this process need know its device: gloo carries CPU tensors and, where
    CUDA is present, nccl carries CUDA tensors, so every process picks the same backends whatever its run says
    (a process that failed before reading its run still meets the others: settle)."""
    if world.distributed and not torch_dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        torch_dist.init_process_group(backend, timeout=dt.timedelta(minutes=10))


def join(world: World, device: torch.device) -> torch.device:
    """Join the process group (once) and return the device this process trains on."""
    if not world.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    meet(world)
    return device


def settle(world: World, failure: BaseException | None) -> None:
    """Under torchrun, raise on every process if what came before failed on any, and on none otherwise.

    Every process meets here, so none waits for ever on one that left: what fails on one node only (data or a
    run folder missing at its path there) would otherwise end that node's processes and leave the others in
    the group's rendezvous until its timeout. A failure found alike by every process (a bad setting) is raised
    as it is; else every process raises the first failing process's message, naming that process and its host,
    and that process keeps its own exception (a traceback for what is not a VaelabError).
    """
    if not world.distributed:
        if failure is not None:
            raise failure
        return
    meet(world)
    told = gather_json(None if failure is None else [socket.gethostname(), _message(failure)], world,
                       torch.device("cpu"))  # [host, message] of each process that failed, None for the others
    failed = [(rank, said) for rank, said in enumerate(told) if said is not None]
    if not failed:
        return
    leave()
    rank, (host, message) = failed[0]
    if failure is not None and (len(failed) == world.size and all(said[1] == message for _, said in failed)
                                or not isinstance(failure, VaelabError)):
        raise failure
    raise VaelabError(f"{message} (process {rank} of {world.size}, on {host})") from failure


def _message(failure: BaseException) -> str:
    if isinstance(failure, VaelabError):
        return str(failure)
    if isinstance(failure, OSError) and failure.strerror:
        return f"{failure.filename}: {failure.strerror}" if failure.filename else failure.strerror
    return f"{type(failure).__name__}: {failure}"


def leave() -> None:
    """Leave the process group if this process joined one."""
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DistributedDataParallel around module when distributed; the module itself otherwise."""
    if not world.distributed:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def total(value: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of value over all processes (value itself when not distributed)."""
    if not world.distributed:
        return value
    value = value.clone()
    torch_dist.all_reduce(value)
    return value


class _Summed(torch.autograd.Function):
    """all_reduce (sum) forward, and of the gradient backward."""

    @staticmethod
    def forward(ctx, value: torch.Tensor) -> torch.Tensor:
        value = value.clone()
        torch_dist.all_reduce(value)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        torch_dist.all_reduce(grad)
        return grad


def summed(value: torch.Tensor) -> torch.Tensor:
    """The sum of value over all processes of the group, differentiable: its gradient is the sum of the
    processes' gradients (what a statistic of the whole batch, each process holding a slice, needs)."""
    return _Summed.apply(value)


def barrier(world: World) -> None:
    if world.distributed:
        torch_dist.barrier()


def gather_rows(part: torch.Tensor, world: World) -> torch.Tensor:
    """Every process's rows, in rank order, on every process: (sum of the processes' R_i, ...) from each (R_i, ...).

    The processes may hold different numbers of rows (none, too); they are padded to the longest for the
    all_gather and trimmed after. Values are copied, never summed: the result is bit-identical to the parts.
    """
    if not world.distributed:
        return part
    counts = [torch.zeros(1, dtype=torch.int64, device=part.device) for _ in range(world.size)]
    torch_dist.all_gather(counts, torch.tensor([part.shape[0]], dtype=torch.int64, device=part.device))
    longest = max(int(c) for c in counts)
    padded = torch.zeros((longest, *part.shape[1:]), dtype=part.dtype, device=part.device)
    padded[:part.shape[0]] = part
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    torch_dist.all_gather(parts, padded)
    return torch.cat([p[:int(c)] for p, c in zip(parts, counts)])


def agree(ok: bool, world: World, device: torch.device) -> bool:
    """True on every process only if `ok` is true on every process."""
    if not world.distributed:
        return ok
    flag = torch.tensor([0 if ok else 1], device=device)
    torch_dist.all_reduce(flag)
    return int(flag) == 0


def gather_json(value: Any, world: World, device: torch.device) -> list[Any]:
    """Every process's value (what json writes: numbers, strings, lists, dicts), in rank order, on every process.

    Sent as UTF-8 JSON text, never pickled."""
    if not world.distributed:
        return [value]
    text = torch.tensor(list(json.dumps(value).encode()), dtype=torch.uint8, device=device)  # (bytes,)
    counts = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world.size)]
    torch_dist.all_gather(counts, torch.tensor([text.numel()], dtype=torch.int64, device=device))
    padded = torch.zeros(max(int(c) for c in counts), dtype=torch.uint8, device=device)
    padded[:text.numel()] = text
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    torch_dist.all_gather(parts, padded)
    return [json.loads(bytes(p[:int(c)].tolist()).decode()) for p, c in zip(parts, counts)]
