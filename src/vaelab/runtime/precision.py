"""Matrix-product precision: fp32, tf32 (CUDA), bf16, or auto, decided from a table of hardware facts.

The networks' matrix products are what costs; the distributions (log-densities, logsumexp over
samples, the running sums) stay in float32/float64 either way, because models cast network
outputs to float32 before building distributions. fp32 is exact float32 throughout.

`auto` (training's default) is a pure function of facts about the machine and the software: the
CPU's feature flags, the GPU's compute capability, torch's version. It never times anything, so the
same command on the same machine picks the same precision, and gives the same numbers, every time.
The facts and the choice, with the reason, are written beside `precision` in the run's config.toml.
    CUDA, compute capability >= 8.0 (Ampere and newer): tf32 (tensor cores; fp32 range, 10-bit mantissa)
    CPU with avx512_bf16 (AMD Zen 4, Intel Sapphire Rapids: the latter also has amx_bf16), torch 2.13:
        bf16: W1 trains faster than in fp32 (the measurement is in CPU_TABLE and docs/BENCHMARKS.md)
    anything else: fp32. An AVX2-only CPU emulates bfloat16 (~70x slower matrix products than fp32);
        Arm's BF16 and other torch versions have not been measured, so they get fp32 too.
The CPU flags come from /proc/cpuinfo, or from $VAELAB_CPU_FLAGS (cpu_flags(): the one place they can
be faked, so the test suite can run as the other kind of CPU). `choose` is the one place a requested
precision becomes the concrete one a run uses and records.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..config.choices import PRECISIONS
from ..errors import VaelabError

CONCRETE = PRECISIONS[1:]  # ("fp32", "tf32", "bf16"): what choose() returns
CPU_FLAGS_ENV = "VAELAB_CPU_FLAGS"  # e.g. "avx2 fma": these flags instead of /proc/cpuinfo's (read in cpu_flags only)
NATIVE_BF16 = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 AVX512-BF16 and AMX, Arm BF16: bfloat16 arithmetic exists

# auto on a CPU: the first row whose flag the CPU has decides, for the torch versions it was measured with.
# (flag, precision, torch versions, why): measured with benchmarks/bench_train.py and alternating fp32/bf16 runs of
# other configs, results in docs/BENCHMARKS.md ("auto's table"). A CPU with AMX (amx_bf16) lists avx512_bf16 too.
CPU_TABLE = (
    ("avx512_bf16", "bf16", ("2.13",),
     "AVX512-BF16 dot products: bf16 trained W1 (784-400-20, batch 128) 1.3-1.8x faster than fp32, fashion-hvae "
     "1.26x, seed-conv-vae 1.09x; only tiny models lose (digits 64-200-20: 1.4x slower, at 0.08 s/epoch) "
     "(AMD EPYC, torch 2.13, docs/BENCHMARKS.md)"),
)
CUDA_TF32_FROM = (8, 0)  # Ampere: tensor cores take tf32 inputs
_warned: set[str] = set()


@dataclass(frozen=True)
class Decision:
    """A concrete precision and why it was taken, in words (written beside it in config.toml)."""

    precision: str
    why: str


def cpu_flags() -> set[str]:
    """The CPU's feature flags: $VAELAB_CPU_FLAGS when set (whitespace or commas between flags), else
    /proc/cpuinfo's (x86 'flags', Arm 'Features'); empty where unreadable."""
    faked = os.environ.get(CPU_FLAGS_ENV)
    if faked is not None:
        return set(faked.replace(",", " ").split())
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def _torch_version() -> str:
    """torch's major.minor, e.g. '2.13'."""
    return ".".join(torch.__version__.split("+")[0].split(".")[:2])


def _cpu_facts(flags: set[str]) -> str:
    """The facts auto reads on a CPU, in words: the bfloat16 flags it has, torch's version."""
    native = sorted(flags & NATIVE_BF16)
    source = f"${CPU_FLAGS_ENV}" if CPU_FLAGS_ENV in os.environ else "/proc/cpuinfo"
    return (f"CPU flags ({source}): {', '.join(native) if native else 'no avx512_bf16/amx_bf16/bf16'}; "
            f"torch {_torch_version()}")


def auto(device: torch.device) -> Decision:
    """What `auto` means on `device`: a table lookup on hardware facts and torch's version, never a timing."""
    if device.type == "cuda":
        cap = torch.cuda.get_device_capability(device)
        name = f"{torch.cuda.get_device_name(device)}, compute capability {cap[0]}.{cap[1]}"
        if cap >= CUDA_TF32_FROM:
            return Decision("tf32", f"auto: {name} (Ampere or newer): tf32 tensor-core matrix products")
        return Decision("fp32", f"auto: {name} predates Ampere (no tf32)")
    if device.type != "cpu":
        return Decision("fp32", f"auto: no table row for {device.type} devices")
    flags = cpu_flags()
    facts = _cpu_facts(flags)
    for flag, kind, versions, why in CPU_TABLE:
        if flag in flags:
            if _torch_version() in versions:
                return Decision(kind, f"auto: {facts}: {kind}: {why}")
            return Decision("fp32", f"auto: {facts}: fp32: {kind} on {flag} was measured with torch "
                                    f"{', '.join(versions)} only")
    if flags & NATIVE_BF16:
        return Decision("fp32", f"auto: {facts}: fp32: bf16 on this CPU has not been measured with vaelab")
    return Decision("fp32", f"auto: {facts}: fp32: without bfloat16 arithmetic torch emulates bf16, far slower")


def missing(kind: str, device: torch.device) -> str | None:
    """Why `device` lacks native `kind` arithmetic, in words; None when it has it."""
    if kind == "fp32":
        return None
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if (major, minor) >= CUDA_TF32_FROM:
            return None
        return f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor}) predates Ampere"
    if device.type != "cpu":
        return f"native {kind} is only detected on CPUs and CUDA GPUs, not {device.type}"
    if kind == "tf32":
        return "tf32 is a CUDA precision; use fp32 or bf16 on the CPU"
    if cpu_flags() & NATIVE_BF16:
        return None
    return (f"this CPU ({torch.backends.cpu.get_cpu_capability()}, no avx512_bf16/amx_bf16 in its flags) "
            f"has no bfloat16 arithmetic, so torch emulates it: expect it several times slower than fp32")


def decide(requested: str, device: torch.device) -> Decision:
    """The concrete precision ('fp32', 'tf32' or 'bf16') for `requested` on `device`, and why."""
    if requested not in PRECISIONS:
        raise VaelabError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested == "auto":
        return auto(device)
    reason = missing(requested, device)
    if reason is not None and requested == "tf32" and device.type != "cuda":
        raise VaelabError(reason)
    if reason is not None and reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"precision {requested}: {reason}; precision auto picks from the hardware", stacklevel=3)
    return Decision(requested, f"set to {requested} (in the config, as an argument, or by an earlier auto)")


def choose(requested: str, device: torch.device) -> str:
    """The concrete precision ('fp32', 'tf32' or 'bf16') to use for `requested` on `device`."""
    return decide(requested, device).precision


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
