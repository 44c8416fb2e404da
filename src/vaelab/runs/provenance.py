"""How a run was made: command line, versions, git commit, machine, threads, precision, seed, wall times.

epochs.EpochWriter records one session per training process in RUN/provenance.json (a resume adds a
session): `start` when training begins, `finish` when it ends. A session that never finished (a kill)
has no "finished" time.
"""

from __future__ import annotations

import datetime as dt
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runtime import parallel
from .resolve import Resolved

GIT_SECONDS = 5  # a git call that takes longer is given up (a huge or networked repository)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def command_line(argv: list[str] | None = None, orig: list[str] | None = None) -> str:
    """The command as typed: `vaelab ...` or `python -m vaelab ...`, else the interpreter's own argv."""
    argv = list(sys.argv if argv is None else argv)
    orig = list(getattr(sys, "orig_argv", argv) if orig is None else orig)
    first = Path(argv[0]) if argv else Path()
    if first.name == "vaelab":
        return shlex.join(["vaelab", *argv[1:]])
    if first.name == "__main__.py" and first.parent.name == "vaelab":
        return shlex.join(["python", "-m", "vaelab", *argv[1:]])
    return shlex.join(orig)


def git_commit(folder: str | Path) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the git repository holding folder; None outside one, or without git."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=GIT_SECONDS)
        if done.returncode:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):  # not a repository, no commit yet, no git, too slow
        return None
    return {"commit": commit, "dirty": dirty}


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def session(r: Resolved, first_epoch: int) -> dict[str, Any]:
    """A training session's provenance, as it starts."""
    from .. import __version__

    device = r.device
    cuda = device.type == "cuda"
    here = git_commit(Path.cwd())
    source = git_commit(Path(__file__).resolve().parent)
    return {
        "command": command_line(), "cwd": str(Path.cwd()),
        "vaelab": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "numpy": np.__version__, "platform": platform.platform(),
        "git_commit": here["commit"] if here else None, "git_dirty": here["dirty"] if here else None,
        "vaelab_git_commit": source["commit"] if source else None,
        "device": str(device), "cpu": cpu_model(),
        "gpu": torch.cuda.get_device_name(device) if cuda else None, "cuda": torch.version.cuda if cuda else None,
        "threads": torch.get_num_threads(), "precision": r.precision,
        "precision_why": r.precision_why, "seed": r.config.seed,
        "first_epoch": first_epoch, "started": _now(), "start_time": time.time(),
        "processes": parallel.world_from_env().size,  # torchrun's WORLD_SIZE: processes training together
    }


def finished(s: dict[str, Any], last_epoch: int) -> dict[str, Any]:
    """The session with its end: last epoch trained, finish time and wall seconds."""
    wall = time.time() - s["start_time"] if isinstance(s.get("start_time"), (int, float)) else None
    return s | {"last_epoch": last_epoch, "finished": _now(), "wall_seconds": wall}
