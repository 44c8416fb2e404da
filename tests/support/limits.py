"""Run the CLI in a child process whose address space is capped: a test that something is NOT allocated.

The cap is the child's own size once torch, scikit-learn and the digits are loaded, plus `headroom`
bytes; an allocation past it fails at once (MemoryError or a torch RuntimeError) instead of paging
in gigabytes on a shared machine, so a command that would allocate shows a traceback and exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from paths import ROOT

SRC = str(ROOT / "src")
GiB = 1 << 30

CHILD = """
import contextlib, io, json, resource, sys, traceback
import torch
import vaelab.api, vaelab.cli.main, vaelab.sweeps.sweep
from vaelab.data import load_images
load_images("digits")  # scikit-learn and its libraries: mapped before the cap
torch.randn(1, device="meta")  # and the meta device's Python kernels
def size():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
cap = size() + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
if sys.argv[2] != "--many":
    sys.exit(vaelab.cli.main.run(sys.argv[2:]))
out = []
for argv in json.loads(sys.argv[3]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = vaelab.cli.main.run(argv)
        except BaseException:
            code, err = 1, io.StringIO(traceback.format_exc())
    out.append((code, err.getvalue()))
print(json.dumps(out))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def run_capped(args: list[str], headroom: int, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`vaelab ARGS` in a child limited to its loaded size + headroom bytes of address space."""
    return subprocess.run([sys.executable, "-c", CHILD, str(headroom), *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def run_capped_many(commands: list[list[str]], headroom: int, cwd: Path, timeout: float = 600) -> list[tuple[int, str]]:
    """Several `vaelab ARGS` one after another in one capped child (one start-up): [(exit code, stderr)]."""
    import json

    out = subprocess.run([sys.executable, "-c", CHILD, str(headroom), "--many", json.dumps(commands)], cwd=cwd,
                         env=_env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return [tuple(r) for r in json.loads(out.stdout.splitlines()[-1])]
