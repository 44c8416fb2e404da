"""Every evaluation of a run kept, stamped with the weights it scored; eval.json the current weights' best.

A mixin of RunFolder (runs/folder.py owns the file names: self.evals, self.eval_path, self.weights).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable

from .json_text import write_json


class EvalHistory:
    """evals/<split>-k<k>[-first<n>][-<noise>][-<precision>].json, one per evaluation; eval.json chosen from them."""

    path: Path
    evals: Path
    eval_path: Path
    weights: Path
    read_metrics: Callable[..., list[dict]]
    make_subfolder: Callable[[str], Path]

    @staticmethod
    def _read(path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _write(path: Path, data: Any) -> None:
        write_json(path, data)

    def weights_sha256(self) -> str | None:
        """SHA-256 of model.safetensors: the stamp that ties an evaluation to the weights it scored."""
        try:
            with self.weights.open("rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            return None

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
        return self.evals / f"{name}.json"

    def evaluations(self) -> list[dict]:
        """Every kept evaluation, each with "stale" set: True when the weights changed since it was made."""
        current, out = self.weights_sha256(), []
        for p in sorted((self.evals).glob("*.json")):
            ev = self._read(p)
            if isinstance(ev, dict):
                stamp = ev.get("weights") if isinstance(ev.get("weights"), dict) else {}
                out.append(ev | {"stale": current is None or stamp.get("sha256") != current})
        return out

    def read_eval(self) -> dict | None:
        """eval.json, with "stale": True when the run was trained on after it was written."""
        ev = self._read(self.eval_path)
        if not isinstance(ev, dict):
            return None
        stamp = ev.get("weights")
        if isinstance(stamp, dict) and stamp.get("sha256") != self.weights_sha256():
            ev["stale"] = True
        return ev

    def weights_stamp(self, sha256: str | None) -> dict:
        """What ties an evaluation to the weights it scored: the SHA-256 of the bytes loaded (never of whatever
        the file holds when the result is written: training may replace it meanwhile) and the epochs trained
        by then (read right after loading, so never fewer than the weights have seen)."""
        rows = self.read_metrics()
        return {"sha256": sha256, "epochs_trained": rows[-1]["epoch"] if rows else 0}

    def write_eval(self, result: dict, stamp: dict) -> Path:
        """Keep one evaluation, with weights_stamp()'s stamp, in evals/ and choose eval.json again; returns its
        file (an evaluation of weights replaced since is kept, stale, and never shown as eval.json)."""
        self._keep_legacy_eval()
        result = {k: v for k, v in result.items() if k != "stale"}
        result["weights"] = stamp
        path = self.eval_file(result)
        self.make_subfolder(self.evals.name)  # never through a link (folder.py)
        self._write(path, result)
        self.refresh_eval()
        return path

    def refresh_eval(self) -> None:
        """eval.json := the current weights' most accurate evaluation (fp32 before a lower precision, the whole
        split before a subset, the run's own NPMI convention before another, the test split first, then the
        largest k);
        with none current, the old eval.json stays, marked "stale"."""
        if not (self.evals).is_dir() and not self.eval_path.exists():
            return  # never evaluated: nothing to choose or mark
        current = [ev for ev in self.evaluations() if not ev["stale"]]
        if current:
            best = max(current, key=lambda ev: (ev.get("precision", "fp32") == "fp32", "split_points" not in ev,
                                                "npmi_window" not in ev and "npmi_reference" not in ev,
                                                ev.get("split") == "test", ev.get("k", 0),
                                                ev.get("split") == "val", ev.get("noise") is not None))
            best = {k: v for k, v in best.items() if k != "stale"}
            if self._read(self.eval_path) != best:
                self._write(self.eval_path, best)
            return
        ev = self._read(self.eval_path)
        if isinstance(ev, dict) and not ev.get("stale"):
            self._write(self.eval_path, ev | {"stale": True})

    def _keep_legacy_eval(self) -> None:
        """An eval.json from before evals/ existed is kept there (unstamped, so never current) before it is replaced."""
        ev = self._read(self.eval_path)
        if isinstance(ev, dict) and "weights" not in ev and not self.eval_file(ev).exists():
            self.make_subfolder(self.evals.name)
            self._write(self.eval_file(ev), ev)

