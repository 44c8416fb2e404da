"""`vaelab evaluate` keeps every evaluation (RUN/evals/), eval.json shows the most accurate one for the
current weights, and training on (--resume) marks the earlier ones stale (issue 12 section 4)."""

import hashlib
import json

import pytest
import torch

import vaelab
from vaelab.cli.main import run as cli
from vaelab.reports import compare
from vaelab.runs.folder import RunFolder

SMALL = dict(data="digits", hidden=(16,), latent_dim=2, batch_size=64, device="cpu", lr=3e-3, log=lambda s: None)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _eval(run, k, split="test"):
    return vaelab.evaluate(run, k=k, split=split)


@pytest.fixture()
def run(tmp_path):
    return vaelab.train(out=tmp_path / "r", epochs=2, finish=False, **SMALL)


def test_every_k_is_kept_and_eval_json_shows_the_largest(run):
    first = {k: _eval(run, k) for k in (5, 50, 10)}
    val = _eval(run, 40, split="val")
    kept = {p.name: json.loads(p.read_text()) for p in (run / "evals").glob("*.json")}
    assert set(kept) == {"test-k5.json", "test-k10.json", "test-k50.json", "val-k40.json"}
    for k, r in first.items():  # nothing thrown away: each file holds that evaluation's numbers
        assert kept[f"test-k{k}.json"]["nll"] == r["nll"] and kept[f"test-k{k}.json"]["k"] == k
    assert kept["val-k40.json"]["nll"] == val["nll"]
    shown = json.loads((run / "eval.json").read_text())
    assert shown["k"] == 50 and shown["split"] == "test" and shown["nll"] == first[50]["nll"]
    # the stamp is the weights file's own SHA-256 (computed here independently) and its epoch count
    assert shown["weights"] == {"sha256": _sha(run / "model.safetensors"), "epochs_trained": 2}
    assert not list(run.rglob("*.tmp"))  # written atomically: no temporary left behind


def test_resuming_marks_old_evaluations_stale(run, capsys):
    _eval(run, 50)
    before = _sha(run / "model.safetensors")
    vaelab.train(out=run, resume=True, epochs=6, finish=False, log=lambda s: None)
    assert _sha(run / "model.safetensors") != before  # the precondition: training on replaced the weights
    folder = RunFolder(run)
    assert folder.history.read_eval()["stale"] is True
    assert json.loads((run / "eval.json").read_text())["stale"] is True  # said in the file itself, too
    assert [ev["stale"] for ev in folder.history.evaluations()] == [True]
    with pytest.raises(vaelab.VaelabError, match="evaluate .* again"):
        compare.run_row(run)  # a stale number is never ranked
    # a cheaper evaluation of the new weights now beats the stale larger k
    new = _eval(run, 5)
    shown = folder.history.read_eval()
    assert shown["k"] == 5 and shown["nll"] == new["nll"] and "stale" not in shown
    assert shown["weights"] == {"sha256": _sha(run / "model.safetensors"), "epochs_trained": 6}
    assert (run / "evals" / "test-k50.json").is_file()  # the old one is kept, marked stale on reading
    assert {ev["k"]: ev["stale"] for ev in folder.history.evaluations()} == {5: False, 50: True}
    assert compare.run_row(run)["nll"] == new["nll"]
    # the command line says where it wrote and what eval.json shows
    assert cli(["-q", "evaluate", str(run), "--k", "7"]) == 0
    assert f"wrote {run / 'evals' / 'test-k7.json'}; {run / 'eval.json'} shows the test split at k=7" in \
        capsys.readouterr().out


def test_an_eval_json_from_before_evals_existed_is_kept(run):
    legacy = {"split": "test", "k": 3, "nll": 123.0, "model": "vae"}
    (run / "eval.json").write_text(json.dumps(legacy))
    _eval(run, 4)
    assert json.loads((run / "evals" / "test-k3.json").read_text()) == legacy
    assert RunFolder(run).history.read_eval()["k"] == 4  # unstamped, so never taken for the current weights


def test_the_stamp_is_of_the_weights_scored_even_when_training_replaces_them_meanwhile(run, tmp_path, monkeypatch):
    """evaluate while a training process writes (issue 27, item 8): model.safetensors is replaced between the
    load and the write of the result. The result is stamped with the SHA-256 of the bytes it scored, so it is
    kept as a stale evaluation and eval.json never presents it as the new weights' number."""
    import shutil

    from safetensors.torch import load, save

    from vaelab import api
    from vaelab.atomic import atomic_write

    scored = _sha(run / "model.safetensors")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)  # the scored weights, kept untouched elsewhere
    raw = (run / "model.safetensors").read_bytes()
    newer = save({k: v + 0.01 for k, v in load(raw).items()}, metadata=json.loads(raw[8:8 + int.from_bytes(
        raw[:8], "little")])["__metadata__"])  # another epoch's weights, as a trainer writes them
    summarize = api.ev.summarize

    def scored_then_replaced(*args, **kwargs):
        out = summarize(*args, **kwargs)
        atomic_write(run / "model.safetensors", newer)  # lands while the scores are being put together
        return out

    monkeypatch.setattr(api.ev, "summarize", scored_then_replaced)
    result = _eval(run, 5)
    monkeypatch.undo()
    kept = json.loads((run / "evals" / "test-k5.json").read_text())
    assert _sha(run / "model.safetensors") != scored  # the precondition: the file changed under the evaluation
    assert kept["weights"]["sha256"] == scored and kept["nll"] == result["nll"]
    assert _eval(copy, 5)["nll"] == result["nll"]  # the number does belong to the stamped (scored) weights
    assert [ev["stale"] for ev in RunFolder(run).history.evaluations()] == [True]
    assert not (run / "eval.json").exists()  # nothing evaluated the current weights: no eval.json claims them



def test_weights_replaced_between_the_digest_and_the_map_are_read_again(run, monkeypatch):
    """The stamp comes from hashing the file and its tensors from a memory map of it: a trainer's rename landing
    between the two would pair one version's SHA-256 with the other's weights. Here it lands there, once."""
    from safetensors.torch import load, save

    from vaelab.atomic import atomic_write
    from vaelab.runs import loading, weights_file
    from vaelab.runs.checkpoint import read_shape

    path = run / "model.safetensors"
    raw = path.read_bytes()
    meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    newer_tensors = {k: v + 0.01 for k, v in load(raw).items()}  # another epoch's weights, as a trainer writes them
    newer = save(newer_tensors, metadata=meta)
    read_tensors, calls = weights_file.read_tensors, []

    def replaced_first(p, names):
        if not calls:
            atomic_write(path, newer)  # after the old version was hashed, before it is mapped
        calls.append(p)
        return read_tensors(p, names)

    monkeypatch.setattr(weights_file, "read_tensors", replaced_first)
    model, sha256 = loading.load_weights_of(loading.load_config(run), run, read_shape(path))
    for name, value in model.state_dict().items():  # the weights loaded are the newer version's
        assert torch.equal(value, newer_tensors[name]), name
    assert sha256 == hashlib.sha256(newer).hexdigest() != hashlib.sha256(raw).hexdigest()  # and so is the stamp
    assert len(calls) == 2  # (the version replaced mid-read was read again)
