"""Start-up time of the command line against `python -c "import torch"`, in one run, taking turns.

    python benchmarks/bench_startup.py [--rounds 5]

Each command runs in a fresh interpreter; wall time from spawn to exit, median and spread over rounds,
and the CPU time the child used (which a busy neighbour barely moves).
`vaelab train --epochs 0` imports the library and torch, loads scikit-learn's digits and writes a run
folder, so it shows what a command that does something pays before its first step.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def commands(tmp: str) -> dict[str, list[str]]:
    py = [sys.executable]
    return {
        "python -c 'import torch'": py + ["-c", "import torch"],
        "vaelab --help": py + ["-m", "vaelab", "--help"],
        "vaelab train --epochs 0": py + ["-m", "vaelab", "-q", "train", "--epochs", "0", "--no-report", "--overwrite",
                                         "--device", "cpu", "--out", str(Path(tmp) / "run")],
    }


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far (steady on a busy machine)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(tmp)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        cpu: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(a.rounds):
            for name, cmd in cmds.items():  # taking turns, so a busy spell hits every command alike
                used, start = _children_cpu(), time.perf_counter()
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(_children_cpu() - used)
    print(f"start-up wall time, {a.rounds} rounds, Python {sys.version.split()[0]}")
    print("| command | wall s, median | wall s, min–max | CPU s (user+sys), median |")
    print("| --- | --- | --- | --- |")
    for name, t in times.items():
        print(f"| `{name}` | {statistics.median(t):.2f} | {min(t):.2f}–{max(t):.2f} "
              f"| {statistics.median(cpu[name]):.2f} |")


if __name__ == "__main__":
    main()
