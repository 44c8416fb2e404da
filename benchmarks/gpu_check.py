"""One-shot check of the GPU path: CUDA graphs vs eager, precisions, NLL, sweeps, NVDM; JSON + Markdown out.

    python benchmarks/gpu_check.py --out gpu-check                 # on one GPU, under 5 minutes
    python benchmarks/gpu_check.py --device cpu --quick --out DIR  # tiny data on the CPU, what CI runs

Every section runs in its own try/except under a time budget (--budget seconds, SIGALRM), and its
result or its error goes into DIR/gpu_check.json and DIR/gpu_check.md, so one failure loses nothing
else. The exit code is 1 when any section failed, and when the CUDA-graph run's per-epoch losses
differ from the eager run's (same seed) by more than --rtol: that is a wrong result, not a slow one.

Targets on one H100/H200 (recorded beside each number, never asserted): W1 <= 0.08 s/epoch,
NLL-5000 over the 10,000 test images <= 0.5 s, eight swept models <= 2x the time of one. The last sections
time one epoch of each GPU-sized leaderboard recipe (RECIPES) and project its whole schedule in minutes
(the deep-models issue asks for its best recipe in <= 10 minutes of training on one H100/H200).
With --frontier MINUTES, a last section trains fashion-conv-hvae for that budget and scores the whole test split
with NLL-5000 in fp32: the deep-models issue's GPU row in the same call. With --deadline SECONDS the whole
invocation plans to end within that wall time (one device call): the frontier times its evaluation first and
trains only as long as leaves room for it, and a section that cannot start with --budget seconds left is
skipped (and says so). The results are rewritten after every section, so a killed call still leaves them; the
frontier's weights, config and metrics are copied beside them.

    python benchmarks/gpu_check.py --out OUT --only "recipe fashion-conv-hvae,frontier,graphs,nll" \
        --frontier 10 --deadline 540 --keep 60 --data-dir DIR       # the GPU row first, in one 10-minute call
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

import torch

import vaelab
from vaelab.bench.reference import nll_one_point_at_a_time, sync
from vaelab.bench.timings import machine
from vaelab.config import schema as cfg
from vaelab.estimators.evaluation import point_bounds
from vaelab.runs import inputs, loading, resolve
from vaelab.runs.folder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"w1_s_per_epoch": 0.08, "nll_seconds": 0.5, "sweep_ratio": 2.0}
# the leaderboard recipes that want a GPU (docs/RESULTS.md, issues 10 and 13): one epoch each, on this device
RECIPES = ("fashion-hvae-vamp", "fashion-conv-hvae", "fashion-pixelcnn")
CHECKS = ("graphs", "precisions", "nll", "sweep", "nvdm")  # Check's methods, each a section of the same name
FRONTIER = "fashion-conv-hvae"  # the GPU row's recipe; its CPU schedule ends at ~0.35 of the starting lr (0.9^10)
FRONTIER_LR_END = 0.35
PROBE_POINTS = 200  # test points whose NLL-k is timed before the frontier trains (and the subset table's 200)
EVAL_MARGIN = 1.1  # the whole split's evaluation is planned at this multiple of the probe's pace
EPOCH_MARGIN = 1.1  # an epoch's wall time (validation, checkpoint) at this multiple of its training time
MIN_TRAIN = 30.0  # seconds of training the frontier keeps even when the deadline then cuts its evaluation short
SHORTEST = 15.0  # seconds: a section is not started with less left before the deadline
FRONTIER_FILES = ("config.toml", "metrics.jsonl", "model.safetensors")  # copied into --out as frontier-NAME


class Budget(Exception):
    """A section ran past its time budget."""


def _alarm(signum, frame):
    raise Budget("ran past its time budget")


def section(results: dict, name: str, budget: float, fn: Callable[[], dict]) -> None:
    """Run fn under a time budget; record its dict, or its error, under results['sections'][name]."""
    start = time.perf_counter()
    if budget <= 0:
        results["sections"][name] = {"ok": True, "skipped": "the deadline leaves no time for it", "seconds": 0.0}
        print(f"[{name}] skipped: the deadline leaves no time for it", flush=True)
        return
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, math.ceil(budget)))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = {"ok": True, **fn()}
        out["warnings"] = sorted({str(w.message).splitlines()[0] for w in caught})
    except Exception as e:  # noqa: BLE001 - every failure is recorded, the next section still runs
        out = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=4)}
    finally:
        signal.alarm(0)
    out["seconds"] = round(time.perf_counter() - start, 3)
    results["sections"][name] = out
    print(f"[{name}] {'ok' if out['ok'] else 'FAILED: ' + out['error']} ({out['seconds']:.1f} s)", flush=True)


def graphs_possible(device: torch.device) -> bool:
    """Whether the training step can be captured as a CUDA graph on `device` (graphs.usable's device test)."""
    return device.type == "cuda"


class Check:
    """The sections, sharing the data and the W1 settings of one invocation."""

    def __init__(self, a: argparse.Namespace, tmp: Path, left: Callable[[], float]):
        self.a, self.tmp, self.dev, self.left = a, tmp, resolve.device(a.device), left  # left(): seconds to deadline
        data = "digits" if a.quick else "fashion-mnist"
        self.w1 = dict(data=data, model="vae", hidden=(400,), latent_dim=20, likelihood="bernoulli", batch_size=128,
                       lr=1e-3, val_fraction=0.0, seed=0, device=a.device, log=lambda s: None)
        if a.data_dir and not a.quick:
            self.w1["data_dir"] = a.data_dir
        self.data = inputs.load_data(vaelab.make_config(**{k: v for k, v in self.w1.items() if k != "log"}))
        self.epochs = 2 if a.quick else 3

    def train(self, name: str, **kw) -> tuple[Path, list[dict]]:
        """A W1 run (overrides in kw); its folder and its metrics rows."""
        run = vaelab.train(finish=False, out=self.tmp / name, **{"epochs": self.epochs, **self.w1, **kw})
        return run, RunFolder(run).read_metrics()

    @staticmethod
    def steady(rows: list[dict]) -> float:
        """Median train seconds per epoch, without the first epoch (warm-up, capture) when there are more."""
        t = sorted(r["train_seconds"] for r in (rows[1:] if len(rows) > 1 else rows))
        return t[len(t) // 2]

    def graphs(self) -> dict:
        """W1 eager and as a CUDA graph, same seed: the per-epoch losses must agree (to --rtol), the graph faster."""
        if not graphs_possible(self.dev):
            return {"skipped": f"CUDA graphs need a CUDA device; on {self.dev.type} both runs would be eager"}
        _, eager = self.train("eager", cuda_graphs=False, precision="fp32")
        _, graph = self.train("graph", cuda_graphs=True, precision="fp32")
        a, b = [r["train_loss"] for r in eager], [r["train_loss"] for r in graph]
        rel = max(abs(x - y) / abs(x) for x, y in zip(a, b))
        return {"eager_losses": a, "graph_losses": b, "max_rel_diff": rel,
                "rtol": self.a.rtol, "equal": rel <= self.a.rtol, "eager_s_per_epoch": self.steady(eager),
                "graph_s_per_epoch": self.steady(graph)}

    def precisions(self) -> dict:
        out = {}
        for p in ("fp32", "tf32", "bf16", "auto"):
            if p == "tf32" and self.dev.type != "cuda":
                out[p] = {"skipped": "tf32 is a CUDA precision"}
                continue
            run, rows = self.train(f"w1-{p}", precision=p)
            s = self.steady(rows)
            out[p] = {"precision": loading.load_config(run).precision, "s_per_epoch": s,
                      "images_per_s": len(self.data.train) / s, "final_train_loss": rows[-1]["train_loss"],
                      "target_s_per_epoch": TARGETS["w1_s_per_epoch"], "meets_target": s <= TARGETS["w1_s_per_epoch"]}
        return out

    def nll(self) -> dict:
        k, ref_points = (100, 10) if self.a.quick else (5000, 100)
        run = self.tmp / "w1-fp32"
        if not run.exists():
            run, _ = self.train("w1-fp32", precision="fp32")
        _, model = loading.load_model(run, self.data.shape, self.dev)
        x = inputs.eval_inputs(loading.load_config(run), self.data, "test", self.dev)
        point_bounds(model, x[:256], k)  # warm-up: kernels, allocator
        sync(self.dev)
        start = time.perf_counter()
        ours = point_bounds(model, x, k)
        sync(self.dev)
        seconds = time.perf_counter() - start
        torch.manual_seed(0)
        start = time.perf_counter()
        ref = nll_one_point_at_a_time(model, x[:ref_points], k)
        sync(self.dev)
        ref_seconds = time.perf_counter() - start
        mine = float(-ours.iwae[:ref_points].mean())
        return {"k": k, "points": len(x), "seconds": seconds, "nll": float(-ours.iwae.mean()),
                "ref_points": ref_points, "ref_seconds": ref_seconds, "ref_nll": float(ref.mean()),
                "nll_on_ref_points": mine, "abs_diff_on_ref_points": abs(mine - float(ref.mean())),
                "target_seconds": TARGETS["nll_seconds"], "meets_target": seconds <= TARGETS["nll_seconds"]}

    def sweep(self) -> dict:
        def per_epoch(m: int) -> float:
            kw = {k: v for k, v in self.w1.items() if k != "seed"}
            root = vaelab.sweep(seeds=m, out=self.tmp / f"sweep-{m}", **{"epochs": self.epochs, **kw})
            rows = [RunFolder(p.parent).read_metrics() for p in sorted(root.glob("*/metrics.jsonl"))]
            assert len(rows) == m, f"{len(rows)} run folders for {m} models"
            return self.steady(rows[0])  # stacked models share one loop, so each run logs the group's time
        one, eight = per_epoch(1), per_epoch(8)
        return {"one_s_per_epoch": one, "eight_s_per_epoch": eight, "ratio": eight / one,
                "target_ratio": TARGETS["sweep_ratio"], "meets_target": eight / one <= TARGETS["sweep_ratio"]}

    def nvdm(self) -> dict:
        bbc = Path(self.a.bbc)
        if not (bbc / "corpus.tsv").exists():
            return {"skipped": f"no corpus at {bbc}"}
        run = vaelab.train("nvdm-bbc", finish=False,
                           data=f"corpus:{bbc}", out=self.tmp / "nvdm", epochs=1, device=self.a.device,
                           log=lambda s: None)
        row = RunFolder(run).read_metrics()[0]
        return {"s_per_epoch": row["train_seconds"], "train_loss": row["train_loss"]}

    def recipe_data(self) -> dict:
        """The data overrides of a shipped Fashion-MNIST recipe: digits with --quick, else --data-dir if given."""
        return {"data": "digits"} if self.a.quick else {"data_dir": self.a.data_dir} if self.a.data_dir else {}

    def recipe(self, name: str) -> dict:
        """One epoch of a shipped recipe (--quick: on digits): s/epoch and its whole schedule's projected minutes;
        wall_seconds is the whole call's (building the model, the epoch, its validation and checkpoint)."""
        start = time.perf_counter()
        run = vaelab.train(name, finish=False, out=self.tmp / name, epochs=1, device=self.a.device,
                           log=lambda s: None, **self.recipe_data())
        wall = time.perf_counter() - start
        row, epochs = RunFolder(run).read_metrics()[0], cfg.load(name).epochs
        return {"data": loading.load_config(run).data, "s_per_epoch": row["train_seconds"], "recipe_epochs": epochs,
                "projected_minutes": row["train_seconds"] * epochs / 60, "train_loss": row["train_loss"],
                "wall_seconds": wall}

    def frontier(self, timed: dict) -> dict:
        """FRONTIER for up to --frontier minutes, then NLL-k (fp32) of the test split, planned to end by the deadline.

        From the recipe section's one-epoch run of FRONTIER (`timed`): its wall seconds per epoch, and the pace of
        NLL-k, timed here on its first PROBE_POINTS test points (warm). Training gets as many epochs as fit in
        the minutes, and in the deadline after the whole split's evaluation, the lr decaying to FRONTIER_LR_END of
        its start over them, max_minutes as the guard. If the deadline then leaves too little for every test
        point, the first ones that fit are scored and the result says how many."""
        if not timed.get("wall_seconds"):
            raise RuntimeError(f"needs the timings of the section 'recipe {FRONTIER}', which did not finish")
        k, dev, first = (100 if self.a.quick else 5000), self.a.device, self.tmp / FRONTIER
        data = inputs.load_data(loading.load_config(first))
        n = len(inputs.split_tensor(data, "test")[0])
        probe = min(PROBE_POINTS, n)

        def score(run: Path, points: int) -> dict:
            return vaelab.evaluate(run, k=k, device=dev, data=data, precision="fp32", points=points, write=False)
        score(first, max(1, probe // 4))  # warm-up: kernels, allocator
        start = time.perf_counter()
        score(first, probe)
        per_point = (time.perf_counter() - start) / probe
        budget = min(self.a.frontier * 60, max(MIN_TRAIN, self.left() - self.a.keep - per_point * n * EVAL_MARGIN))
        planned = max(1, int(budget / (timed["s_per_epoch"] * EPOCH_MARGIN)))  # its first epoch: the slowest
        decay = FRONTIER_LR_END ** (1 / (planned - 1)) if planned > 1 else 1.0
        run = vaelab.train(FRONTIER, finish=False, out=self.tmp / "frontier", epochs=planned, lr_decay=decay,
                           max_minutes=budget / 60, device=dev, log=lambda s: None, **self.recipe_data())
        rows = RunFolder(run).read_metrics()
        for name in FRONTIER_FILES:  # the weights travel back even if the evaluation is cut short
            shutil.copyfile(run / name, Path(self.a.out) / f"frontier-{name}")
        fits = (self.left() - self.a.keep) / (per_point * EVAL_MARGIN)  # inf without a deadline
        points = max(1, int(min(n, fits)))
        ev = score(run, points)
        subset = score(run, probe) if points > probe else ev
        return {"recipe": FRONTIER, "data": loading.load_config(run).data, "max_minutes": self.a.frontier,
                "probe_points": probe, "probe_s_per_point": per_point, "planned_train_seconds": budget,
                "planned_epochs": planned, "lr_decay": decay, "epochs": len(rows),
                "train_seconds": sum(r["train_seconds"] for r in rows), "s_per_epoch": self.steady(rows),
                "precision": loading.load_config(run).precision, "eval_precision": "fp32",
                "test_points": ev["n"], "split_points": n, "k": ev["k"], "elbo": ev["elbo"], "nll": ev["nll"],
                "eval_seconds": ev["seconds"], f"nll_first_{subset['n']}": subset["nll"],
                f"elbo_first_{subset['n']}": subset["elbo"]}


def time_for(name: str, a: argparse.Namespace, left: float) -> float:
    """A section's time budget in seconds, cut to what the deadline leaves; 0 (skip it) when that is too little.
    The frontier plans its own length inside the deadline."""
    if name == "frontier":
        return min(a.budget + a.frontier * 60 * 1.5 + 900, left) if left >= a.budget + MIN_TRAIN else 0.0
    return min(a.budget, left) if left >= SHORTEST else 0.0


def write(results: dict, out: Path) -> None:
    """gpu_check.json and gpu_check.md as the results stand (after every section, so a killed call keeps them)."""
    graphs = results["sections"].get("graphs", {})
    results["failed"] = [n for n, s in results["sections"].items() if not s["ok"]]
    if graphs.get("ok") and "equal" in graphs and not graphs["equal"]:
        results["failed"].append("graphs (CUDA-graph losses differ from eager)")
    for name, text in (("gpu_check.json", json.dumps(results, indent=2, default=str) + "\n"),
                       ("gpu_check.md", markdown(results))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


def markdown(r: dict) -> str:
    """The results as a Markdown table, one row per section."""
    lines = [f"# gpu_check on {r['machine']}", "", f"{'quick' if r['quick'] else 'full'} run, {r['started']}", "",
             "| section | status | numbers |", "| --- | --- | --- |"]
    for name, s in r["sections"].items():
        body = {k: v for k, v in s.items() if k not in ("ok", "traceback", "warnings")}
        text = json.dumps(body, default=str).replace("|", "/")
        lines.append(f"| {name} | {'ok' if s['ok'] else '**FAILED**'} | `{text}` |")
    lines += ["", f"overall: {'**FAILED** ' + ', '.join(r['failed']) if r['failed'] else 'ok'}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    threads = torch.get_num_threads()
    try:
        return _main(argv)
    finally:
        torch.set_num_threads(threads)  # main() called in-process (the tests) leaves the caller's setting


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    ap.add_argument("--quick", action="store_true", help="tiny data (scikit-learn digits), small k: the CI mode")
    ap.add_argument("--out", default="gpu-check", help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--budget", type=float, default=75.0, help="seconds per section before it is stopped")
    ap.add_argument("--rtol", type=float, default=1e-3, help="graph vs eager: largest relative epoch-loss difference")
    ap.add_argument("--data-dir", help="folder with the Fashion-MNIST files")
    ap.add_argument("--bbc", default=str(ROOT.parent / "shared" / "data" / "bbc_news"), help="the BBC News corpus")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: 1 with --quick, else torch's)")
    ap.add_argument("--only", help="comma-separated sections to run (after setup), e.g. "
                    f"'recipe {FRONTIER},frontier' for the GPU row alone in one device call")
    ap.add_argument("--frontier", type=float, default=0.0,
                    help=f"minutes of {FRONTIER} training for the GPU row, then its test NLL-5000 (0: off)")
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="wall seconds for the whole invocation (0: none); sections plan and skip to end inside it")
    ap.add_argument("--keep", type=float, default=0.0,
                    help="seconds of the deadline the frontier leaves to the sections after it")
    a = ap.parse_args(argv)
    if a.deadline < 0 or a.keep < 0 or a.frontier < 0:
        ap.error("--deadline, --keep and --frontier must be >= 0")
    known = [*CHECKS, *(f"recipe {r}" for r in RECIPES)] + (["frontier"] if a.frontier else [])
    names = [n.strip() for n in a.only.split(",")] if a.only else known
    if set(names) - set(known):
        ap.error(f"--only: no section {', '.join(sorted(set(names) - set(known)))}; choose from {', '.join(known)}")
    if a.threads or a.quick:  # one thread: a CI runner's other jobs slow two threads several-fold
        torch.set_num_threads(a.threads or 1)
    started = time.perf_counter()
    left = (lambda: a.deadline - (time.perf_counter() - started)) if a.deadline else (lambda: math.inf)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": "unknown", "device": a.device, "quick": a.quick, "torch": torch.__version__,
               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": sys.argv[1:] if argv is None else argv,
               "targets": TARGETS, "sections": {}}
    with tempfile.TemporaryDirectory() as tmp:
        setup = {}
        section(results, "setup", a.budget, lambda: setup.setdefault("check", Check(a, Path(tmp), left)) and
                {"machine": machine(resolve.device(a.device))})
        results["machine"] = results["sections"]["setup"].get("machine", "unknown")
        write(results, out)
        check = setup.get("check")
        jobs = {f"recipe {FRONTIER}": lambda: check.recipe(FRONTIER),  # the GPU row first
                "frontier": lambda: check.frontier(results["sections"].get(f"recipe {FRONTIER}", {}))}
        jobs |= {name: lambda name=name: getattr(check, name)() for name in CHECKS}
        jobs |= {f"recipe {r}": lambda r=r: check.recipe(r) for r in RECIPES if r != FRONTIER}
        jobs = {n: job for n, job in jobs.items() if n in names}
        for name, job in jobs.items():
            if check is None:
                results["sections"][name] = {"ok": False, "error": "setup failed"}
                continue
            section(results, name, time_for(name, a, left()), job)
            write(results, out)
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    if results["failed"]:
        print(f"gpu_check FAILED: {', '.join(results['failed'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
