"""benchmarks/gpu_check.py in its CPU mode, so the one-shot GPU check cannot rot before a GPU runs it."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest
from paths import ROOT

ROOT = ROOT
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
RECIPES = ("fashion-hvae-vamp", "fashion-conv-hvae", "fashion-pixelcnn")
SECTIONS = ("setup", "recipe fashion-conv-hvae", "frontier", "graphs", "precisions", "nll", "sweep", "nvdm",
            "recipe fashion-hvae-vamp", "recipe fashion-pixelcnn")  # the GPU row first


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_cpu_run_writes_every_section_with_sane_numbers(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(tmp_path),
                          "--frontier", "0.15"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    assert "| graphs | ok |" in (tmp_path / "gpu_check.md").read_text()
    assert r["failed"] == [] and r["quick"] and r["device"] == "cpu"
    s = r["sections"]
    assert tuple(s) == SECTIONS and all(v["ok"] for v in s.values())
    assert "CUDA device" in s["graphs"]["skipped"]  # eager against eager would prove nothing
    p = s["precisions"]
    assert p["fp32"]["precision"] == "fp32" and p["auto"]["precision"] in ("fp32", "bf16") and "skipped" in p["tf32"]
    assert p["bf16"]["precision"] == "bf16"
    for kind in ("fp32", "bf16", "auto"):
        assert 0 < p[kind]["s_per_epoch"] < 60 and math.isfinite(p[kind]["final_train_loss"])
        assert abs(p[kind]["final_train_loss"] - p["fp32"]["final_train_loss"]) < 1.0  # bf16 learns alike
    n = s["nll"]  # digits: 64 binary pixels, so a trained model's NLL lies well inside (0, 64 log 2)
    assert n["points"] > 300 and 0 < n["nll"] < 64 * math.log(2)
    assert n["abs_diff_on_ref_points"] < 0.3  # the batched evaluator and the one-point loop agree
    assert s["sweep"]["one_s_per_epoch"] > 0 and s["sweep"]["ratio"] > 0
    assert "skipped" in s["nvdm"] or s["nvdm"]["s_per_epoch"] > 0
    epochs = {"fashion-hvae-vamp": 234, "fashion-conv-hvae": 11, "fashion-pixelcnn": 18}  # the recipes' own
    for name in RECIPES:  # one epoch of each recipe, on digits in the quick mode, its schedule projected
        t = s[f"recipe {name}"]
        assert t["data"] == "digits" and t["recipe_epochs"] == epochs[name] and t["s_per_epoch"] > 0
        assert t["projected_minutes"] == t["s_per_epoch"] * epochs[name] / 60 and math.isfinite(t["train_loss"])
    f = s["frontier"]  # the GPU row: epochs fitted to 9 s from the recipe section's s/epoch, then NLL-k of all test
    planned = max(1, int(9.0 / (s["recipe fashion-conv-hvae"]["s_per_epoch"] * 1.1)))
    assert f["recipe"] == "fashion-conv-hvae" and f["data"] == "digits" and f["planned_epochs"] == planned
    assert f["planned_train_seconds"] == 9.0 and f["probe_points"] == 200 and f["probe_s_per_point"] > 0
    assert f["lr_decay"] == (0.35 ** (1 / (planned - 1)) if planned > 1 else 1.0)
    assert 1 <= f["epochs"] <= planned and (f["epochs"] == 1 or f["train_seconds"] <= 9.0)
    assert f["test_points"] == f["split_points"] == n["points"] and f["k"] == 100 and f["eval_precision"] == "fp32"
    assert 0 < f["nll"] < 64 * math.log(2) and f["nll"] <= -f["elbo"]
    assert f["nll_first_200"] != f["nll"]  # the first 200 points alone, not the whole split again
    for name in ("config.toml", "metrics.jsonl", "model.safetensors"):  # the weights travel back beside the numbers
        assert (tmp_path / f"frontier-{name}").stat().st_size > 0
    rows = (tmp_path / "frontier-metrics.jsonl").read_text().splitlines()
    assert len(rows) == f["epochs"]


def test_graph_losses_that_differ_from_eager_fail_the_check(tmp_path, monkeypatch):
    gc = _load_script()

    def fake_train(self, name, **kw):  # the graphed run drifts by 1 %
        drift = 1.01 if kw.get("cuda_graphs") else 1.0
        return None, [{"train_loss": 40.0 * drift, "train_seconds": 1.0}, {"train_loss": 30.0, "train_seconds": 1.0}]

    monkeypatch.setattr(gc.Check, "train", fake_train)
    monkeypatch.setattr(gc, "graphs_possible", lambda device: True)  # as on a GPU
    for name in ("precisions", "nll", "sweep", "nvdm", "recipe"):
        monkeypatch.setattr(gc.Check, name, lambda self, *recipe: {})
    code = gc.main(["--device", "cpu", "--quick", "--out", str(tmp_path)])
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    assert code == 1 and not r["sections"]["graphs"]["equal"]
    assert abs(r["sections"]["graphs"]["max_rel_diff"] - 0.01) < 1e-9
    assert r["failed"] == ["graphs (CUDA-graph losses differ from eager)"]


def test_a_failing_section_is_recorded_and_the_rest_still_run(tmp_path, monkeypatch):
    gc = _load_script()
    monkeypatch.setattr(gc.Check, "graphs", lambda self: 1 / 0)
    for name in ("precisions", "nll", "sweep", "nvdm", "recipe"):
        monkeypatch.setattr(gc.Check, name, lambda self, *recipe: {"fine": True})
    assert gc.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == 1
    s = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert not s["graphs"]["ok"] and "ZeroDivisionError" in s["graphs"]["error"]
    assert s["nll"] == {"ok": True, "fine": True, "warnings": [], "seconds": s["nll"]["seconds"]}


def test_only_runs_the_named_sections_and_the_frontier_reads_the_recipe_section(tmp_path, monkeypatch):
    gc = _load_script()
    seen = {}
    monkeypatch.setattr(gc.Check, "recipe", lambda self, name: {"s_per_epoch": 2.5})
    monkeypatch.setattr(gc.Check, "frontier", lambda self, timed: seen.setdefault("s", timed["s_per_epoch"]) and {})
    args = ["--device", "cpu", "--quick", "--out", str(tmp_path), "--frontier", "1"]
    assert gc.main(args + ["--only", "recipe fashion-conv-hvae,frontier"]) == 0
    s = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert list(s) == ["setup", "recipe fashion-conv-hvae", "frontier"] and seen["s"] == 2.5
    with pytest.raises(SystemExit) as e:  # no frontier section without --frontier MINUTES: exit 2, nothing written
        gc.main(["--device", "cpu", "--quick", "--out", str(tmp_path / "no"), "--only", "frontier"])
    assert e.value.code == 2 and not (tmp_path / "no").exists()


def test_a_deadline_skips_what_it_leaves_no_time_for_and_each_section_is_saved_as_it_ends(tmp_path, monkeypatch):
    gc = _load_script()
    clock = {"now": 0.0}
    monkeypatch.setattr(gc.time, "perf_counter", lambda: clock["now"])
    saved = []

    def section_taking(seconds):
        def run(self):
            saved.append(sorted(json.loads((tmp_path / "gpu_check.json").read_text())["sections"]))
            clock["now"] += seconds
            return {"took": seconds}
        return run

    monkeypatch.setattr(gc.Check, "graphs", section_taking(50.0))
    monkeypatch.setattr(gc.Check, "precisions", section_taking(40.0))
    monkeypatch.setattr(gc.Check, "nll", section_taking(1.0))
    code = gc.main(["--device", "cpu", "--quick", "--out", str(tmp_path), "--deadline", "100",
                    "--only", "graphs,precisions,nll"])
    s = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    # 100 s: graphs (50) and precisions (40) run; 10 s are left, under the 15 a section needs to start
    assert code == 0 and s["graphs"]["took"] == 50.0 and s["precisions"]["took"] == 40.0
    assert "deadline" in s["nll"]["skipped"]
    assert saved == [["setup"], ["graphs", "setup"]]  # the file was rewritten after each section ended
    assert gc.time_for("nll", gc.argparse.Namespace(budget=75.0), 30.0) == 30.0  # cut to the deadline
