"""Every evaluation of a run kept, stamped with the weights it scored; eval.json the current weights' best.

A component of RunFolder (folder.history), which owns the file names: it is given the folder and reads
folder.evals, folder.eval_path and folder.weights_sha256() from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from .json_text import read_json, write_json


class Folder(Protocol):
    """What EvalHistory reads from its run folder (runs/folder.py RunFolder)."""

    @property
    def evals(self) -> Path: ...

    @property
    def eval_path(self) -> Path: ...

    def make_subfolder(self, name: str) -> Path: ...

    def weights_sha256(self) -> str | None: ...

FACTORS = "-factors.json"  # evals/<split>-factors.json: disentanglement metrics, apart from the bounds


class EvalHistory:
    """evals/<split>-k<k>[-first<n>][-<noise>][-<precision>].json, one per evaluation; eval.json chosen from them."""

    def __init__(self, folder: Folder):
        self.folder = folder

    def eval_file(self, result: dict) -> Path:
        """evals/<split>-k<k>[-first<n>][-<noise>][-<precision>].json: where one evaluation is kept (an fp32 one,
        the default, has no precision in its name; one without a precision key was fp32 too)."""
        name = f"{result.get('split', 'test')}" + (f"-k{result['k']}" if "k" in result else "")
        if "split_points" in result:  # evaluate --points: the split's first n
            name += f"-first{result.get('n')}"
        if result.get("noise"):
            name += "-" + re.sub(r"[^A-Za-z0-9.]+", "-", str(result["noise"])).strip("-")
        if result.get("precision", "fp32") != "fp32":  # bf16 / tf32: never replaces the fp32 evaluation
            name += "-" + re.sub(r"[^A-Za-z0-9]+", "-", str(result["precision"])).strip("-")
        if "npmi_window" in result:  # NPMI by another convention than the run's (api.evaluate)
            name += f"-npmi-w{result['npmi_window']}"
        if "npmi_reference" in result:
            ref = Path(str(result["npmi_reference"])).name or "train"
            name += "-npmi-" + (re.sub(r"[^A-Za-z0-9.]+", "-", ref).strip("-.") or "ref")
        return self.folder.evals / f"{name}.json"

    def evaluations(self) -> list[dict]:
        """Every kept evaluation, each with "stale" set: True when the weights changed since it was made."""
        current, out = self.folder.weights_sha256(), []
        for p in sorted(self.folder.evals.glob("*.json")):
            if p.name.endswith(FACTORS):  # disentanglement metrics: no bound, never eval.json
                continue
            ev = read_json(p)
            if isinstance(ev, dict):
                stamp = ev.get("weights") if isinstance(ev.get("weights"), dict) else {}
                out.append(ev | {"stale": current is None or stamp.get("sha256") != current})
        return out

    def read_eval(self) -> dict | None:
        """eval.json, with "stale": True when the run was trained on after it was written."""
        ev = read_json(self.folder.eval_path)
        if not isinstance(ev, dict):
            return None
        stamp = ev.get("weights")
        if isinstance(stamp, dict) and stamp.get("sha256") != self.folder.weights_sha256():
            ev["stale"] = True
        return ev

    def write_eval(self, result: dict, stamp: dict) -> Path:
        """Keep one evaluation, with RunFolder.weights_stamp()'s stamp, in evals/ and choose eval.json again;
        returns its file (an evaluation of weights replaced since is kept, stale, and never shown as eval.json)."""
        self._keep_legacy_eval()
        result = {k: v for k, v in result.items() if k != "stale"}
        result["weights"] = stamp
        path = self.eval_file(result)
        self.folder.make_subfolder(self.folder.evals.name)  # never through a link (folder.py)
        write_json(path, result)
        self.refresh_eval()
        return path

    def refresh_eval(self) -> None:
        """eval.json := the current weights' most accurate evaluation (fp32 before a lower precision, the whole
        split before a subset, the run's own NPMI convention before another, the test split first, then the
        largest k);
        with none current, the old eval.json stays, marked "stale"."""
        if not self.folder.evals.is_dir() and not self.folder.eval_path.exists():
            return  # never evaluated: nothing to choose or mark
        current = [ev for ev in self.evaluations() if not ev["stale"]]
        if current:
            best = max(current, key=lambda ev: (ev.get("precision", "fp32") == "fp32", "split_points" not in ev,
                                                "npmi_window" not in ev and "npmi_reference" not in ev,
                                                ev.get("split") == "test", ev.get("k", 0),
                                                ev.get("split") == "val", ev.get("noise") is not None))
            best = {k: v for k, v in best.items() if k != "stale"}
            if read_json(self.folder.eval_path) != best:
                write_json(self.folder.eval_path, best)
            return
        ev = read_json(self.folder.eval_path)
        if isinstance(ev, dict) and not ev.get("stale"):
            write_json(self.folder.eval_path, ev | {"stale": True})

    def factors_path(self, split: str = "test") -> Path:
        """evals/<split>-factors.json: the disentanglement metrics of the codes (estimators/disentanglement.py)."""
        return self.folder.evals / f"{split}{FACTORS}"

    def write_factors(self, result: dict, stamp: dict) -> Path:
        """Keep the disentanglement metrics, stamped with the weights they scored (eval.json is left alone)."""
        path = self.factors_path(result.get("split", "test"))
        self.folder.make_subfolder(self.folder.evals.name)
        write_json(path, result | {"weights": stamp})
        return path

    def read_factors(self, split: str = "test") -> dict | None:
        """The disentanglement metrics of the current weights; None when absent or made for other weights."""
        ev = read_json(self.factors_path(split))
        if not isinstance(ev, dict) or not isinstance(ev.get("weights"), dict):
            return None
        return ev if ev["weights"].get("sha256") == self.folder.weights_sha256() else None

    def _keep_legacy_eval(self) -> None:
        """An eval.json from before evals/ existed is kept there (unstamped, so never current) before it is replaced."""
        ev = read_json(self.folder.eval_path)
        if isinstance(ev, dict) and "weights" not in ev and not self.eval_file(ev).exists():
            self.folder.make_subfolder(self.folder.evals.name)
            write_json(self.eval_file(ev), ev)

