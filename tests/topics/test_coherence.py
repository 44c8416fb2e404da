"""NPMI's two conventions (whole documents, sliding windows) and its reference corpus, against hand counts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from coherence_by_hand import mean_npmi, split_documents, top_words
from corpora import two_topic_lines, write_tsv

import vaelab
from vaelab.cli.main import run as cli
from vaelab.data import load_corpus
from vaelab.runs import inputs, loading
from vaelab.topics import coherence

VOCAB = ("apple", "fig", "kiwi", "pear", "plum")  # sorted, as a corpus's vocabulary is
APPLE, FIG, KIWI, PEAR, PLUM = range(5)
# "zz" is outside the vocabulary: it keeps its place in a window; "I" is one letter, which the tokenizer drops
REFERENCE = "Apple pear zz fig plum kiwi\napple I kiwi\n"
TOPICS = [[APPLE, PEAR], [PEAR, FIG], [APPLE, PLUM], [APPLE, KIWI]]


def test_sliding_window_of_3_by_hand(tmp_path):
    # document 1's tokens: apple pear zz fig plum kiwi -> windows {apple pear zz} {pear zz fig} {zz fig plum}
    # {fig plum kiwi}; document 2 (apple kiwi) is shorter than the window: one unit. 5 units:
    # P(apple) = 2/5, P(pear) = 2/5, P(fig) = 3/5, P(plum) = 2/5, P(kiwi) = 2/5
    (tmp_path / "ref.txt").write_text(REFERENCE, encoding="utf-8")
    ref = coherence.reference(_data(), 3, str(tmp_path / "ref.txt"))
    got = coherence.npmi(TOPICS, ref)
    expect = [math.log((1 / 5) / (2 / 5 * 2 / 5)) / -math.log(1 / 5),  # apple, pear: window 1 only
              math.log((1 / 5) / (2 / 5 * 3 / 5)) / -math.log(1 / 5),  # pear, fig: window 2 only
              -1.0,  # apple, plum: never within 3 tokens
              math.log((1 / 5) / (2 / 5 * 2 / 5)) / -math.log(1 / 5)]  # apple, kiwi: document 2
    assert np.allclose(got, expect, rtol=0, atol=1e-12)
    assert "sliding window of 3 tokens" in ref.describe() and str(tmp_path / "ref.txt") in ref.describe()


def test_whole_documents_of_an_external_corpus_by_hand(tmp_path):
    # two units: {apple pear fig plum kiwi} and {apple kiwi}: P(apple) = P(kiwi) = 1, the rest 1/2
    (tmp_path / "ref.txt").write_text(REFERENCE, encoding="utf-8")
    got = coherence.npmi(TOPICS, coherence.reference(_data(), 0, str(tmp_path / "ref.txt")))
    expect = [math.log((1 / 2) / (1 * 1 / 2)) / -math.log(1 / 2),  # apple, pear: 0
              math.log((1 / 2) / (1 / 2 * 1 / 2)) / -math.log(1 / 2),  # pear, fig: always together, 1
              0.0,  # apple, plum: like apple, pear
              1.0]  # apple, kiwi: in every document
    assert np.allclose(got, expect, rtol=0, atol=1e-12)


def test_a_folder_of_txt_files_is_one_document_per_file(tmp_path):
    for i, line in enumerate(REFERENCE.splitlines()):
        (tmp_path / "ref" / "sub").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ref" / ("sub" if i else "") / f"d{i}.txt").write_text(line, encoding="utf-8")
    (tmp_path / "ref.txt").write_text(REFERENCE, encoding="utf-8")
    data = _data()
    for window in (0, 3):
        assert np.array_equal(coherence.npmi(TOPICS, coherence.reference(data, window, str(tmp_path / "ref"))),
                              coherence.npmi(TOPICS, coherence.reference(data, window, str(tmp_path / "ref.txt"))))


def test_the_training_split_in_windows_matches_a_hand_count(tmp_path):
    corpus = write_tsv(tmp_path / "two", two_topic_lines(60))
    data = load_corpus(f"corpus:{corpus}", log=lambda s: None)
    # the kept texts are the training rows: their tokens count to the stored counts
    ids = coherence.token_ids(data.train_texts, data.vocabulary)
    counts = data.train.to_dense().numpy()
    assert np.array_equal(np.stack([np.bincount(t, minlength=data.dim) for t in ids]), counts)
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(data.dim, 3))  # three made-up topics
    vocab = data.vocabulary
    topics = [top_words(weights[:, k], vocab, 6) for k in range(3)]
    index = [[vocab.index(w) for w in t] for t in topics]
    train = split_documents(corpus / "corpus.tsv", "train", set(vocab))
    for window in (0, 2, 10, 40):  # 40 > the 25 tokens of a document: whole documents again
        got = coherence.npmi(index, coherence.reference(data, window)).mean()
        assert got == pytest.approx(mean_npmi(topics, train, window), abs=1e-12), window
    assert coherence.npmi(index, coherence.reference(data, 40)).mean() == pytest.approx(
        coherence.npmi(index, coherence.reference(data, 0)).mean(), abs=1e-12)


def test_evaluate_offers_both_conventions_and_keeps_them_apart(tmp_path, capsys):
    corpus = write_tsv(tmp_path / "two", two_topic_lines(80))
    run = tmp_path / "nvdm"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "nvdm", "--hidden", "16", "--latent-dim", "2",
                "--epochs", "2", "--eval-k", "5", "--device", "cpu", "--no-report", "--out", str(run)]) == 0
    assert cli(["-q", "evaluate", str(run), "--k", "5"]) == 0
    own = json.loads((run / "eval.json").read_text())
    model = vaelab.load(run)
    vocab = inputs.load_data(loading.load_config(run)).vocabulary
    weights = model.topic_weights.detach().numpy()
    ends = [top_words(weights[:, k], vocab, 10, largest) for largest in (True, False) for k in range(2)]
    train = split_documents(corpus / "corpus.tsv", "train", set(vocab))
    assert own["npmi"] == pytest.approx(mean_npmi(ends, train), abs=1e-12) and "npmi_window" not in own

    assert cli(["-q", "evaluate", str(run), "--k", "5", "--npmi-window", "10"]) == 0
    windowed = json.loads((run / "evals" / "test-k5-npmi-w10.json").read_text())
    assert windowed["npmi"] == pytest.approx(mean_npmi(ends, train, 10), abs=1e-12)
    assert windowed["npmi_window"] == 10 and "sliding window of 10 tokens" in windowed["estimators"]["npmi"]
    assert windowed["elbo"] == own["elbo"]  # only the NPMI convention differs
    # eval.json keeps the run's own convention
    assert json.loads((run / "eval.json").read_text())["npmi"] == own["npmi"]

    ref = tmp_path / "wiki.txt"
    ref.write_text(" ".join(f"a{i % 10} b{(7 * i) % 10}" for i in range(200)) + "\n" + "a1 a2 a3\n", encoding="utf-8")
    assert cli(["-q", "evaluate", str(run), "--k", "5", "--npmi-reference", str(ref), "--npmi-window", "10"]) == 0
    external = json.loads((run / "evals" / "test-k5-npmi-w10-npmi-wiki.txt.json").read_text())
    docs = [line.split() for line in ref.read_text().splitlines()]
    assert external["npmi"] == pytest.approx(mean_npmi(ends, docs, 10), abs=1e-12)
    assert external["npmi_reference"] == str(ref) and str(ref) in external["estimators"]["npmi"]


def test_bad_npmi_settings_are_one_error_line(tmp_path, capsys):
    corpus = write_tsv(tmp_path / "two", two_topic_lines(40))
    base = ["-q", "train", "--data", f"corpus:{corpus}", "--model", "nvdm", "--hidden", "8", "--latent-dim", "2",
            "--epochs", "1", "--eval-k", "2", "--device", "cpu", "--no-report"]
    for setting, words in (("npmi_window=1", "npmi_window"), (f"npmi_reference={tmp_path / 'none.txt'}", "no such")):
        out = tmp_path / "never"
        assert cli(base + ["--out", str(out), "--set", setting]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and not out.exists()
    run = tmp_path / "r"
    assert cli(base + ["--out", str(run)]) == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    (tmp_path / "other.txt").write_text("zebra quokka\n", encoding="utf-8")
    for flags, words in ((["--npmi-window", "1"], "npmi_window"),
                         (["--npmi-reference", str(tmp_path / "empty.txt")], "no documents"),
                         (["--npmi-reference", str(tmp_path / "other.txt")], "no document holds a word")):
        assert cli(["evaluate", str(run), *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    image = vaelab.train(finish=False, out=tmp_path / "img", epochs=0, hidden=(8,), latent_dim=2, device="cpu",
                         log=lambda s: None)
    with pytest.raises(vaelab.VaelabError, match="apply to document models"):
        vaelab.evaluate(image, k=2, npmi_window=10)


def _data():
    """A corpus whose vocabulary is VOCAB (the reference is read against it)."""
    from vaelab.data.corpus import build

    data = build("ref", [" ".join(VOCAB)] * 2, ["train", "test"], None, val_fraction=0.0, log=lambda s: None)
    assert data.vocabulary == VOCAB
    return data


def test_a_runs_own_npmi_window_reaches_its_evaluation_and_an_lda_baseline_like_it(tmp_path):
    corpus = write_tsv(tmp_path / "two", two_topic_lines(80))
    run = tmp_path / "nvdm"
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "nvdm", "--hidden", "16", "--latent-dim", "2",
                "--epochs", "1", "--eval-k", "5", "--device", "cpu", "--no-report", "--set", "npmi_window=5",
                "--out", str(run)]) == 0
    assert cli(["-q", "evaluate", str(run), "--k", "5"]) == 0
    ev = json.loads((run / "eval.json").read_text())
    weights = vaelab.load(run).topic_weights.detach().numpy()
    vocab = inputs.load_data(loading.load_config(run)).vocabulary
    ends = [top_words(weights[:, k], vocab, 10, largest) for largest in (True, False) for k in range(2)]
    train = split_documents(corpus / "corpus.tsv", "train", set(vocab))
    assert "npmi_window" not in ev and "sliding window of 5 tokens" in ev["estimators"]["npmi"]
    assert ev["npmi"] == pytest.approx(mean_npmi(ends, train, 5), abs=1e-12)
    out = tmp_path / "lda"
    assert cli(["-q", "baseline", "--model", "lda", "--components", "2", "--max-iter", "5", "--like", str(run),
                "--out", str(out)]) == 0
    base = json.loads((out / "baseline.json").read_text())
    assert base["config"]["npmi_window"] == 5 and "sliding window of 5 tokens" in base["estimators"]["npmi"]
    assert base["npmi"] == pytest.approx(mean_npmi([t.split() for t in base["topics"]], train, 5), abs=1e-12)
