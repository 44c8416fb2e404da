"""Matrix-product precision: fp32, tf32 (CUDA), bf16, or auto, which picks the fastest one the hardware runs natively.

The networks' matrix products are what costs; the distributions (log-densities, logsumexp over
samples, the running sums) stay in float32/float64 either way, because models cast network
outputs to float32 before building distributions. fp32 is exact float32 throughout.

bfloat16 only pays where the hardware has bfloat16 arithmetic: AVX512-BF16 or AMX on x86, BF16
on Arm, Ampere or newer on CUDA. Elsewhere torch emulates it, and an AVX2 CPU trained W1 eight
times slower in bf16 than in fp32 (docs/BENCHMARKS.md). So `auto` (the default) takes bf16 on a
CPU, or tf32 on a GPU, only where the hardware has it natively AND a short probe (a few matrix
products, ~0.1 s, once per process and device) shows it faster; fp32 otherwise. `choose` is the
one place a requested precision becomes the concrete one a run uses and records.
"""

from __future__ import annotations

import functools
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..config.schema import PRECISIONS
from ..errors import VaelabError

CONCRETE = PRECISIONS[1:]  # ("fp32", "tf32", "bf16"): what choose() returns
FASTER = 0.8  # a lower precision must take at most this fraction of fp32's time in the probe
_warned: set[str] = set()


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 'flags', Arm 'Features'); empty where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def missing(kind: str, device: torch.device) -> str | None:
    """Why `device` lacks native `kind` arithmetic, in words; None when it has it."""
    if kind == "fp32":
        return None
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            return None
        return f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor}) predates Ampere"
    if device.type != "cpu":
        return f"native {kind} is only detected on CPUs and CUDA GPUs, not {device.type}"
    if kind == "tf32":
        return "tf32 is a CUDA precision; use fp32 or bf16 on the CPU"
    if cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"}:
        return None
    return (f"this CPU ({torch.backends.cpu.get_cpu_capability()}, no avx512_bf16/amx_bf16 in /proc/cpuinfo) "
            f"has no bfloat16 arithmetic, so torch emulates it: expect it several times slower than fp32")


def _seconds(fn: Callable[[], torch.Tensor], device: torch.device, reps: int = 5) -> float:
    """Best of reps wall times of fn (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=None)
def probe(kind: str, device: torch.device) -> tuple[float, float]:
    """Seconds of one W1-sized matrix-product batch in fp32 and in `kind`, on `device` (timed once per process)."""
    n = 4096 if device.type == "cuda" else 512  # big enough that the arithmetic, not the launch, is timed
    a = torch.full((n, 784), 0.5, device=device)  # no RNG: probing must not move any random stream
    w = torch.full((784, 400 if device.type == "cpu" else n), 0.01, device=device)

    def run() -> torch.Tensor:
        return (a @ w) @ w.T

    fp32 = _seconds(run, device)
    with matmuls(kind, device):
        low = _seconds(run, device)
    return fp32, low


def choose(requested: str, device: torch.device) -> str:
    """The concrete precision ('fp32', 'tf32' or 'bf16') to use for `requested` on `device`."""
    if requested not in PRECISIONS:
        raise VaelabError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested == "auto":
        kind = "tf32" if device.type == "cuda" else "bf16"
        if missing(kind, device) is not None:
            return "fp32"
        fp32, low = probe(kind, device)
        return kind if low < FASTER * fp32 else "fp32"
    reason = missing(requested, device)
    if reason is not None and requested == "tf32" and device.type != "cuda":
        raise VaelabError(reason)
    if reason is not None and reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"precision {requested}: {reason}; precision auto picks the fastest", stacklevel=2)
    return requested


@contextmanager
def matmuls(kind: str, device: torch.device) -> Iterator[None]:
    """Run the block with the networks' matrix products in concrete precision `kind` on `device`."""
    if kind not in CONCRETE:
        raise VaelabError(f"precision must be one of {', '.join(CONCRETE)} here, not {kind!r} (see choose())")
    if kind == "tf32" and device.type != "cuda":
        raise VaelabError("tf32 is a CUDA precision; use fp32 or bf16 on the CPU")
    if kind == "fp32" and device.type != "cuda":
        yield
    elif kind in ("fp32", "tf32"):  # on CUDA both flags are set: cuDNN's convolutions default to tf32
        before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = kind == "tf32"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    else:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield


def tf32_step(kind: str, device: torch.device, step: Callable) -> Callable:
    """step itself, or on CUDA step run with its tf32 setting (forward, backward; captured graphs too): fp32 there
    switches cuDNN's default tf32 convolutions off, tf32 switches tf32 matrix products on."""
    if device.type != "cuda" or kind == "bf16":
        return step  # bf16 is autocast inside the forward pass (train.ObjectiveStep); fp32 on a CPU needs nothing

    def wrapped(*args):
        with matmuls(kind, device):
            return step(*args)
    return wrapped
