"""SIGKILL at every file write of `vaelab train` (strace fault injection), then recovery, bit for bit.

Every file of a run goes through atomic.atomic_write: one fsync, then a rename. strace kills the
process on entering its N-th fsync, so the N-th file exists only as a temporary. Recovery is
`--resume` once a checkpoint exists, else the original command again (a failed start). After the
last recovery the weights and the checkpoint must equal an uninterrupted run's bit for bit (every tensor
byte and metadata value; the header's key order varies between processes), with
eval.json and report.html written and no temporary left. Two chains of kills run side by side: each
recovery is itself killed at the next write, so the writes of resumes are exercised too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clitools import safetensors_content
from paths import ROOT
from safetensors import safe_open

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace is not installed")
SRC = ROOT / "src"
ARGS = ["--data", "digits", "--epochs", "2", "--hidden", "32", "--latent-dim", "4", "--set", "eval_k=10"]
RESUME_WRITES = ["config.toml", "metrics.jsonl", "provenance.json"]  # what every start writes first, in order
FSYNC = re.compile(r"fsync\(\d+<(.*)/\.(.+)\.[^./]+\.tmp>")  # fsync(3</run/plots/.curves.png.x1y2.tmp>)


def _vaelab(cwd: Path, run: str, resume: bool, kill_at: int | None) -> tuple[int, list[str]]:
    """Run train (or --resume), SIGKILLed on entering its kill_at-th fsync; (exit code, files it fsynced)."""
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "vaelab", "-q", "train"] + (["--resume", run] if resume else ARGS + ["--out", run])
    log = cwd / f"{run}.strace"
    inject = ["-e", f"inject=fsync:signal=SIGKILL:when={kill_at}"] if kill_at else []
    p = subprocess.run([STRACE, "-f", "-qq", "-y", "-e", "trace=fsync", *inject, "-o", str(log), *cmd], cwd=cwd,
                       env=env, capture_output=True, text=True, timeout=300)
    written = [f"{m[1]}/{m[2]}".removeprefix(str(cwd / run)).lstrip("/") for m in FSYNC.finditer(log.read_text())]
    if kill_at is None or p.returncode not in (-signal.SIGKILL, 128 + signal.SIGKILL):
        assert p.returncode == 0, p.stderr
    return p.returncode, written


def _chain(cwd: Path, run: str, plan: list[int | str], writes: list[str]) -> list[str]:
    """Kill the run at each planned write (an index into the uninterrupted run's writes, or "config" /
    "metrics": a resume's own first writes), recovering each time, then let it finish; returns what was hit."""
    hit = []
    for point in plan:
        folder = cwd / run
        started = (folder / "checkpoint.safetensors").exists()
        if isinstance(point, str):  # a resume starts by rewriting config.toml, metrics.jsonl, provenance.json
            assert started
            at, expected = RESUME_WRITES.index(point) + 1, point
        else:
            # a resume writes config, metrics and provenance, then the run's writes after its checkpoint's
            done = ([i for i, w in enumerate(writes) if w == "checkpoint.safetensors"][:_epoch(folder)]
                    if started else [])
            at, expected = (len(RESUME_WRITES) + point - (done[-1] + 1) if done else point), writes[point - 1]
        # a failed start (no checkpoint) is retried with the original command, or with --resume every other time
        resume = started or ((folder / "config.toml").exists() and len(hit) % 2 == 1)
        code, written = _vaelab(cwd, run, resume, at)
        assert code != 0 and written and written[-1] == expected, (point, at, written)
        hit.append(f"{'resume' if resume else 'train'}@{expected}")
    _vaelab(cwd, run, (cwd / run / "checkpoint.safetensors").exists(), None)
    return hit


def _epoch(folder: Path) -> int:
    """The last epoch the run's checkpoint holds."""
    with safe_open(str(folder / "checkpoint.safetensors"), framework="pt") as f:
        return json.loads(f.metadata()["state"])["epoch"]


@pytest.mark.precision(kind="auto")  # exact values in whatever precision auto picks here (runs compared alike)
def test_kill_at_every_write_then_recover_bit_for_bit(tmp_path: Path) -> None:
    _, writes = _vaelab(tmp_path, "reference", False, None)
    # what the run keeps of its data (runs/kept_data.py); config, metrics, provenance; per epoch weights, metrics,
    # checkpoint; provenance; eval, six plots, report
    assert writes[:8] == ["data-source.json", "data-view.npz", *RESUME_WRITES, "model.safetensors", "metrics.jsonl",
                          "checkpoint.safetensors"] and writes[-1] == "report.html", writes
    last_ckpt = max(i for i, w in enumerate(writes) if w == "checkpoint.safetensors") + 1
    # chain a: the failed starts and epoch 2; chain b: after training (eval, plots, report) and a resume's own writes
    plans = {"a": list(range(1, last_ckpt + 1)), "b": [last_ckpt + 1, *RESUME_WRITES] +
             list(range(last_ckpt + 2, len(writes) + 1))}
    with ThreadPoolExecutor(2) as pool:
        hits = dict(zip(plans, pool.map(lambda k: _chain(tmp_path, k, plans[k], writes), plans)))
    killed = sum(map(len, hits.values()))
    print(f"{len(writes)} writes in a run; {killed} kill points: {hits}")
    assert killed == len(writes) + len(RESUME_WRITES)
    ref = tmp_path / "reference"
    for name in plans:
        run = tmp_path / name
        for f in ("model.safetensors", "checkpoint.safetensors"):
            assert safetensors_content(run / f) == safetensors_content(ref / f), (name, f)
        assert (run / "eval.json").is_file() and (run / "report.html").is_file()
        assert sorted(p.name for p in (run / "plots").iterdir()) == sorted(p.name for p in (ref / "plots").iterdir())
        assert not [p for p in run.rglob("*.tmp")], name
