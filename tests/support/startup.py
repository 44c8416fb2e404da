"""Which heavy libraries a piece of code imports, run in a fresh interpreter (start-up time is import time)."""

import os
import subprocess
import sys

from paths import ROOT

SRC = str(ROOT / "src")
HEAVY = ("torch", "sklearn", "matplotlib")


def imported_after(code: str) -> list[str]:
    """The heavy modules loaded once `code` has run in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint('loaded:', *(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1].split()[1:]  # the last line; --help prints above it
