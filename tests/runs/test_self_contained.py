"""A run folder stands alone (runs/kept_data.py): copied elsewhere with its data deleted, plot, explore, topics,
topics --docs, vaelab.encode and vaelab.load work from another directory; evaluate refuses data that is gone or
changed, and scores it again once the same bytes are back."""

import hashlib
import shutil

import numpy as np
import pytest
from clitools import expect_error
from corpora import two_topic_lines, write_tsv
from sklearn.datasets import load_digits

import vaelab
from vaelab.cli.main import run as cli
from vaelab.runs import kept_data
from vaelab.runs.folder import RunFolder

QUIET = dict(log=lambda s: None)
TINY = dict(hidden=(16,), latent_dim=2, batch_size=64, device="cpu", epochs=1, eval_k=5, finish=False)


def moved(tmp_path, monkeypatch, run):
    """The run copied to another folder, and the working directory moved to a third."""
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(run, copy)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return copy


def test_an_image_run_on_a_relative_npz_path_stands_alone(tmp_path, monkeypatch, capsys):
    (tmp_path / "train").mkdir()
    monkeypatch.chdir(tmp_path / "train")
    d = load_digits()
    np.savez("mine.npz", x=(d.images[:400] * 15).astype(np.uint8), y=d.target[:400])
    raw = (tmp_path / "train" / "mine.npz").read_bytes()
    run = vaelab.train(data="npz:mine.npz", out="run", **TINY, **QUIET).absolute()
    assert vaelab.load(run).data_shape == (1, 8, 8)
    c = RunFolder(run).read_config()
    assert c.data == f"npz:{tmp_path / 'train' / 'mine.npz'}"  # absolute: the same data from any directory
    source = RunFolder(run).read_json(kept_data.SOURCE)["files"]
    assert source == [{"path": str(tmp_path / "train" / "mine.npz"), "bytes": len(raw),
                       "sha256": hashlib.sha256(raw).hexdigest()}]

    copy = moved(tmp_path, monkeypatch, run)
    shutil.rmtree(tmp_path / "train")  # the data and the original run are gone
    for kind in ("samples", "recon", "latent"):
        assert cli(["plot", str(copy), "--kind", kind]) == 0
    assert cli(["explore", str(copy), "--points", "20"]) == 0
    assert (copy / "plots" / "recon.png").is_file() and (copy / "explorer.html").is_file()
    assert vaelab.sample(vaelab.load(copy), 2, seed=0).shape == (2, 1, 8, 8)

    err = expect_error(["evaluate", str(copy)], capsys)
    assert "which is gone" in err and "mine.npz" in err
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "mine.npz").write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))  # one bit changed
    err = expect_error(["evaluate", str(copy)], capsys)
    assert "has changed since the run trained" in err
    (tmp_path / "train" / "mine.npz").write_bytes(raw)  # the same bytes again: scored
    assert cli(["evaluate", str(copy), "--k", "5"]) == 0


def test_a_run_on_arrays_scores_the_copy_it_keeps(tmp_path, monkeypatch):
    x = load_digits().images[:300] / 16
    run = vaelab.train(data=x, out=tmp_path / "run", **TINY, **QUIET)
    copy = moved(tmp_path, monkeypatch, run)
    shutil.rmtree(run)
    assert vaelab.evaluate(copy, k=5)["data"] == f"npz:{copy.absolute() / 'data.npz'}"


def test_a_document_run_needs_only_its_folder_for_topics_and_new_documents(tmp_path, monkeypatch, capsys):
    corpus = write_tsv(tmp_path / "corpus", two_topic_lines(60))
    run = vaelab.train(data=f"corpus:{corpus}", model="nvdm", out=tmp_path / "run", **TINY, **QUIET)
    topics_before = vaelab.encode(run, ["a1 a2 a3 b4", "b1 b2"]).values
    copy = moved(tmp_path, monkeypatch, run)
    shutil.rmtree(corpus)
    shutil.rmtree(run)

    capsys.readouterr()
    assert cli(["topics", str(copy)]) == 0
    table = capsys.readouterr().out
    assert sum(f"{t}{i}" in table for t in "ab" for i in range(10)) >= 10  # the vocabulary's words, from the run
    (tmp_path / "cwd" / "new.txt").write_text("a1 a2 a3 b4\nb1 b2\n")
    assert cli(["topics", str(copy), "--docs", "new.txt"]) == 0
    assert (copy / "doc_topics.csv").is_file()
    encoded = vaelab.encode(copy, ["a1 a2 a3 b4", "b1 b2"])
    assert np.array_equal(encoded.values, topics_before) and encoded.words.tolist() == [4, 2]
    assert cli(["plot", str(copy), "--kind", "latent"]) == 0
    assert cli(["explore", str(copy), "--points", "5"]) == 0
    err = expect_error(["evaluate", str(copy)], capsys)
    assert "which is gone" in err


@pytest.mark.parametrize("spec", ["digits", "npz:/abs/x.npz"])
def test_absolute_leaves_what_is_not_a_relative_path(spec):
    c = vaelab.make_config(data=spec)
    assert kept_data.absolute(c).data == spec


def test_the_runs_of_a_sweep_stand_alone_too(tmp_path, monkeypatch, capsys):
    (tmp_path / "train").mkdir()
    monkeypatch.chdir(tmp_path / "train")
    corpus = write_tsv(tmp_path / "train" / "corpus", two_topic_lines(60))
    sweep = vaelab.sweep(data="corpus:corpus", model="nvdm", seeds=1, out="sw", **TINY, **QUIET)  # a relative path
    run = (sweep / "seed0").absolute()
    assert RunFolder(run).read_config().data == f"corpus:{corpus}"  # saved absolute, as train saves it
    assert RunFolder(run).read_json("text-reading.json")["stop_words"]  # how new text is read, recorded
    before = vaelab.encode(run, ["a1 a2 a3 b4"]).values
    copy = moved(tmp_path, monkeypatch, run)
    shutil.rmtree(tmp_path / "train")  # the corpus and the sweep are gone
    assert cli(["topics", str(copy)]) == 0 and cli(["plot", str(copy), "--kind", "latent"]) == 0
    assert np.array_equal(vaelab.encode(copy, ["a1 a2 a3 b4"]).values, before)
    assert "which is gone" in expect_error(["evaluate", str(copy)], capsys)
