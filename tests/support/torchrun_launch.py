"""Launching N gloo processes with torchrun on one node (`--standalone`), as the parallel tests do."""

import os
import subprocess
import sys

from paths import ROOT

SRC = str(ROOT / "src")


def env() -> dict[str, str]:
    """This checkout's vaelab first on the path, one thread per process (they share the cores)."""
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")


def one(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """`python ARGS` in one process (no torchrun): the reference a torchrun run is compared with."""
    return subprocess.run([sys.executable, *args], env=env(), capture_output=True, text=True, timeout=timeout)


def torchrun(n: int, args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node n ARGS` (ARGS: a script and its arguments, or -m MODULE ...)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", str(n), *args], env=env(), capture_output=True, text=True,
                          timeout=timeout)
