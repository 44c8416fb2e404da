"""The topic models from the command line: topics, --docs on new texts, vaelab.encode, and bad input refused."""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pytest
from coherence_by_hand import mean_npmi, split_documents, top_words
from corpora import two_topic_lines, write_tsv

import vaelab
from vaelab.cli.main import run as cli
from vaelab.runs import inputs, loading
from vaelab.topics import normalise, scores

TINY = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "16", "--lr", "2e-2", "--eval-k", "5", "--device", "cpu"]
A_DOC = " ".join(f"a{i % 10}" for i in range(25)) + " zebra"  # 25 known words, 1 unseen
B_DOC = "quokka " + " ".join(f"b{i % 10}" for i in range(25)) + " wombat"  # 25 known words, 2 unseen


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Documents of words a0..a9 (label alpha) or b0..b9 (label beta)."""
    return write_tsv(tmp_path_factory.mktemp("corpus") / "two", two_topic_lines(80))


@pytest.fixture(scope="module")
def prodlda_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "prodlda"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "prodlda", *TINY, "--epochs", "30",
                "--set", "alpha=0.5", "--no-report", "--out", str(out)]) == 0
    assert cli(["-q", "evaluate", str(out)]) == 0
    return out


def test_prodlda_run_reports_topic_quality(corpus, prodlda_run, capsys):
    ev = json.loads((prodlda_run / "eval.json").read_text())
    # NPMI of each topic's top-10 words (p(w | theta = e_k)), counted by hand in the training documents
    weights = vaelab.load(prodlda_run).topic_weights.detach().numpy()  # (|V|, K)
    vocab = inputs.load_data(loading.load_config(prodlda_run)).vocabulary
    topics = [top_words(weights[:, k], vocab, 10) for k in range(weights.shape[1])]
    train = split_documents(corpus / "corpus.tsv", "train", set(vocab))
    assert ev["npmi"] == pytest.approx(mean_npmi(topics, train), abs=1e-12)
    assert 'prior = "dirichlet-laplace"' in (prodlda_run / "config.toml").read_text()  # saved as used
    # the vocabulary has 20 words, so each top-25 list is the whole vocabulary: 20 unique of 40
    assert ev["diversity"] == pytest.approx(0.5)
    top10 = scores.topic_lists(vaelab.load(prodlda_run), 10)  # (2, 10): one family of words each
    assert scores.diversity(top10) == 1.0
    assert ev["purity"] == 1.0  # every one of a topic's top test documents has one label
    assert "whole document" in ev["estimators"]["npmi"]
    assert cli(["topics", str(prodlda_run), "--top", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and {w[0] for w in lines[0].split()[3:]} in ({"a"}, {"b"})  # each topic one family


def test_docs_gives_mixtures_and_ignores_unseen_words(prodlda_run, tmp_path, capsys):
    docs = tmp_path / "new.txt"
    docs.write_text(f"{A_DOC}\n\n{B_DOC}\n", encoding="utf-8")
    out = tmp_path / "mix.csv"
    assert cli(["topics", str(prodlda_run), "--docs", str(docs), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 unseen words ignored" in text
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["words"], r["unseen"]) for r in rows] == [("25", "1"), ("25", "2")]
    mix = np.array([[float(r["topic_1"]), float(r["topic_2"])] for r in rows])
    assert np.allclose(mix.sum(1), 1, atol=1e-5)
    assert np.argmax(mix[0]) != np.argmax(mix[1]) and mix.max(1).min() > 0.8  # a-words and b-words: other topics
    e = vaelab.encode(prodlda_run, [A_DOC, B_DOC])
    assert np.allclose(e.values, mix, atol=1e-5) and e.unseen.tolist() == [1, 2]


@pytest.mark.parametrize("content", [b"", b"\n  \n", b"\x00\x01binary\x00", b"\xff\xfe\xfa text"])
def test_bad_docs_file_is_one_error_line_and_nothing_written(prodlda_run, tmp_path, capsys, content):
    docs = tmp_path / "bad.txt"
    docs.write_bytes(content)
    out = tmp_path / "never.csv"
    assert cli(["topics", str(prodlda_run), "--docs", str(docs), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vaelab: error: docs")
    assert not out.exists()


def test_nvdm_docs_gives_signed_latent_codes(corpus, tmp_path, capsys):
    run = tmp_path / "nvdm"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "nvdm", *TINY, "--epochs", "2",
                "--no-report", "--out", str(run)]) == 0
    docs = tmp_path / "d.txt"
    docs.write_text("a1 a2 unknown\n", encoding="utf-8")
    assert cli(["topics", str(run), "--docs", str(docs)]) == 0
    assert "latent codes" in capsys.readouterr().out
    row = next(csv.DictReader(io.StringIO((run / "doc_topics.csv").read_text())))
    e = vaelab.encode(run, ["a1 a2 unknown"])
    assert e.kind == "code" and float(row["z1"]) == pytest.approx(float(e.values[0, 0]), rel=1e-5)
    assert row["top"].split()[0] in ("z1+", "z1-", "z2+", "z2-")


@pytest.mark.parametrize("alpha", ["0", "-1"])
def test_alpha_must_be_positive(corpus, tmp_path, capsys, alpha):
    out = tmp_path / "r"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "prodlda", *TINY, "--epochs", "1",
                "--set", f"alpha={alpha}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alpha" in err[0] and not out.exists()


def _embeddings(path, width: int, words: list[str], bad_line: str | None = None):
    rng = np.random.default_rng(0)
    lines = [w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=width)) for w in words]
    if bad_line is not None:
        lines.insert(1, bad_line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_etm_loads_word_embeddings(corpus, tmp_path):
    words = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)] + ["other"]
    emb = _embeddings(tmp_path / "emb.txt", 4, words)
    run = tmp_path / "etm"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "etm", *TINY, "--epochs", "2",
                "--set", f"embeddings={emb}", "--set", "embedding_dim=4", "--no-report", "--out", str(run)]) == 0
    model = vaelab.load(run)
    vocab = inputs.load_data(loading.load_config(run)).vocabulary
    table = {ln.split()[0]: [float(v) for v in ln.split()[1:]] for ln in emb.read_text().splitlines()}
    rho = model.decoder[1].rho.numpy()  # fixed (a buffer): still the file's rows after training
    assert np.allclose(rho, np.array([table[w] for w in vocab]), atol=1e-6)


@pytest.mark.parametrize("bad", ["a1 0.1 0.2", "a1 0.1 0.2 x 0.4", "a1 0.1 0.2 nan 0.4"])
def test_bad_embedding_file_is_one_error_line_and_nothing_written(corpus, tmp_path, capsys, bad):
    emb = _embeddings(tmp_path / "emb.txt", 4, ["a0", "b0"], bad_line=bad)
    out = tmp_path / "r"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "etm", *TINY, "--epochs", "1",
                "--set", f"embeddings={emb}", "--set", "embedding_dim=4", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "embeddings" in err[0] and "line 2" in err[0] and not out.exists()


def test_prodlda_refuses_another_prior(corpus, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "prodlda", *TINY, "--epochs", "1",
                "--prior", "normal", "--out", str(out)]) == 2
    assert "dirichlet-laplace" in capsys.readouterr().err and not out.exists()


def test_lda_baseline_reports_diversity_and_purity(corpus):
    from vaelab.data import load_corpus
    from vaelab.topics import lda

    data = load_corpus(f"corpus:{corpus}", log=lambda s: None)
    r = lda.fit_lda(data, 2, max_iter=20)
    assert r["diversity"] == pytest.approx(0.5)  # 20 words: each top-25 list is the whole vocabulary
    assert r["purity"] == 1.0  # each topic's 8 (= 16 test documents / 2 topics) top documents share a label
    assert "whole document" in r["estimators"]["npmi"] and r["npmi"] > 0.3


def test_a_run_records_its_text_reading_and_docs_read_new_text_with_it(prodlda_run, tmp_path, capsys):
    recorded = json.loads((prodlda_run / "text-reading.json").read_text())
    assert recorded == normalise.recipe()  # written when it trained, with the stop words themselves
    run = tmp_path / "copy"
    shutil.copytree(prodlda_run, run)
    # another reading recorded: "zebra" a stop word, and a simplemma version that is not the installed one
    (run / "text-reading.json").write_text(json.dumps(recorded | {"stop_words": ["zebra"],
                                                                  "lemmatiser": "simplemma 0.0.1"}))
    docs = tmp_path / "new.txt"
    docs.write_text(f"{A_DOC}\n", encoding="utf-8")
    assert cli(["topics", str(run), "--docs", str(docs)]) == 0
    out = capsys.readouterr().out
    assert "the run's 1 stop words dropped" in out and "besides 1 stop words" in out
    row = next(csv.DictReader(io.StringIO((run / "doc_topics.csv").read_text())))
    assert (row["words"], row["unseen"], row["stop"]) == ("25", "0", "1")
    if recorded["lemmatiser"] is not None:  # simplemma installed: its version is not the recorded 0.0.1
        assert "note: the run recorded simplemma 0.0.1" in out
        with pytest.warns(UserWarning, match="recorded simplemma 0.0.1"):
            e = vaelab.encode(run, [A_DOC])
    else:
        assert "note: the run recorded simplemma 0.0.1, which is not installed" in out
        with pytest.warns(UserWarning, match="not installed"):
            e = vaelab.encode(run, [A_DOC])
    assert (e.words.tolist(), e.unseen.tolist(), e.stop.tolist()) == ([25], [0], [1])
    (run / "text-reading.json").unlink()  # a run trained before runs recorded their reading: read as now, said
    with pytest.warns(UserWarning, match="recorded no text reading"):
        assert vaelab.encode(run, [A_DOC]).unseen.tolist() == [1]
    (run / "text-reading.json").write_text("{not json")
    assert cli(["topics", str(run), "--docs", str(docs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vaelab: error:") and "text-reading.json is damaged" in err[0]
