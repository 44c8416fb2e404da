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
import resource, sys
import vaelab.api, vaelab.cli.main, vaelab.sweeps.sweep
from vaelab.data import load_images
load_images("digits")  # scikit-learn and its libraries: mapped before the cap
def size():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
cap = size() + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
sys.exit(vaelab.cli.main.run(sys.argv[2:]))
"""


def run_capped(args: list[str], headroom: int, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`vaelab ARGS` in a child limited to its loaded size + headroom bytes of address space."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", CHILD, str(headroom), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
