"""Corpora: OCTIS folders, .txt folders, 20 Newsgroups (never downloaded), sparse rows, bad input."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from clitools import expect_error as _bad
from corpora import two_topic_lines, write_tsv
from paths import ROOT

from vaelab.data import corpus, load_corpus, rows
from vaelab.errors import DataError

BBC = ROOT / ".." / "shared" / "data" / "bbc_news"
QUIET = dict(log=lambda s: None)


def test_octis_counts_splits_and_labels(tmp_path):
    root = write_tsv(tmp_path / "c", ["apple apple pear\ttrain\tfruit", "car bus car car\ttrain\tcar",
                                      "pear\tval\tfruit", "bus apple\ttest\tcar"])
    d = load_corpus(f"corpus:{root}", **QUIET)
    assert d.vocabulary == ("apple", "bus", "car", "pear") and d.shape == (4,) and d.scale == 1.0
    dense = rows(d.train, None, d.scale)
    assert dense.tolist() == [[2, 0, 0, 1], [0, 1, 3, 0]]
    assert rows(d.val, None, 1.0).tolist() == [[0, 0, 0, 1]] and rows(d.test, None, 1.0).tolist() == [[1, 1, 0, 0]]
    assert d.label_names == ("car", "fruit")
    assert d.y_train.tolist() == [1, 0] and d.y_val.tolist() == [1] and d.y_test.tolist() == [0]


def test_vocabulary_file_is_used_and_empty_documents_are_dropped_and_counted(tmp_path):
    root = write_tsv(tmp_path / "c", ["red blue zzz\ttrain", "zzz yyy\ttrain", "blue blue\ttrain", "qqq\ttest",
                                      "red\ttest"], vocab=["red", "blue", "green"])
    logged = []
    d = load_corpus(f"corpus:{root}", val_fraction=0.0, log=logged.append)
    assert d.vocabulary == ("red", "blue", "green")  # the file's order, green kept though unseen
    assert rows(d.train, None, 1.0).tolist() == [[1, 1, 0], [0, 2, 0]]
    assert rows(d.test, None, 1.0).tolist() == [[1, 0, 0]]
    assert d.dropped == {"train": 1, "val": 0, "test": 1} and d.y_train is None
    assert any("dropped 2 documents" in line for line in logged)


def test_count_vectorizer_settings(tmp_path):
    lines = [f"the cat sat {'rare' if i == 0 else 'dog'}\ttrain" for i in range(6)] + ["the cat dog\ttest"]
    root = write_tsv(tmp_path / "c", lines)
    assert load_corpus(f"corpus:{root}", **QUIET).vocabulary == ("cat", "dog", "rare", "sat", "the")
    assert load_corpus(f"corpus:{root}", stop_words="english", **QUIET).vocabulary == ("cat", "dog", "rare", "sat")
    assert load_corpus(f"corpus:{root}", min_df=2, **QUIET).vocabulary == ("cat", "dog", "sat", "the")
    # max_df 0.9: words in every training document (cat, sat, the) go
    assert load_corpus(f"corpus:{root}", max_df=0.9, val_fraction=0.0, **QUIET).vocabulary == ("dog", "rare")
    assert len(load_corpus(f"corpus:{root}", vocab_size=2, **QUIET).vocabulary) == 2


def test_missing_val_and_test_splits_are_held_out(tmp_path):
    root = write_tsv(tmp_path / "c", [f"w{i % 3} w{i % 5}\ttrain" for i in range(50)])
    d = load_corpus(f"corpus:{root}", val_fraction=0.1, **QUIET)
    assert (len(d.train), len(d.val), len(d.test)) == (36, 4, 10)  # 20% test, then 10% of the rest


def test_text_folder_with_label_subfolders(tmp_path):
    for label, words in (("space", "orbit moon launch"), ("sport", "goal team league")):
        (tmp_path / "docs" / label).mkdir(parents=True)
        for i in range(5):
            (tmp_path / "docs" / label / f"{i}.txt").write_text(f"{words} {words.split()[i % 3]}", encoding="utf-8")
    d = load_corpus(f"corpus:{tmp_path / 'docs'}", val_fraction=0.0, **QUIET)
    assert d.label_names == ("space", "sport") and len(d.train) + len(d.test) == 10 and len(d.test) == 2
    x = torch.cat([rows(d.train, None, 1.0), rows(d.test, None, 1.0)])
    y = torch.cat([d.y_train, d.y_test])
    space = [d.vocabulary.index(w) for w in ("orbit", "moon", "launch")]
    assert torch.all((x[:, space].sum(1) > 0) == (y == 0))  # each document kept its own label
    assert x.sum(1).tolist() == [4.0] * 10


def test_text_folder_without_labels_and_mixed_layout(tmp_path):
    (tmp_path / "flat").mkdir()
    for i in range(6):
        (tmp_path / "flat" / f"{i}.txt").write_text(f"word{i} common", encoding="utf-8")
    d = load_corpus(f"corpus:{tmp_path / 'flat'}", val_fraction=0.0, **QUIET)
    assert d.y_train is None and d.label_names is None and len(d.train) + len(d.test) == 6
    (tmp_path / "flat" / "sub").mkdir()
    (tmp_path / "flat" / "sub" / "x.txt").write_text("word common", encoding="utf-8")
    with pytest.raises(DataError, match="both in the folder and in label subfolders"):
        load_corpus(f"corpus:{tmp_path / 'flat'}", **QUIET)


def test_csr_rows_match_dense_rows():
    rng = np.random.default_rng(0)
    dense = torch.from_numpy(rng.poisson(0.3, (40, 17)).astype(np.float32))
    dense[5] = 0  # an empty row
    import scipy.sparse as sp

    stored = corpus._to_torch(sp.csr_matrix(dense.numpy()))
    idx = torch.tensor([5, 0, 39, 5, 12, 7])
    assert torch.equal(rows(stored, idx, 1.0), dense[idx])
    assert torch.equal(rows(stored, idx, 0.5), dense[idx] * 0.5)
    assert torch.equal(rows(stored, None, 1.0), dense)
    assert torch.equal(rows(stored, idx[:0], 1.0), dense[:0])


def test_20newsgroups_offline_is_a_clear_error(monkeypatch):
    import sklearn.datasets

    def offline(**kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", offline)
    with pytest.raises(DataError, match="download failed"):
        load_corpus("20newsgroups", **QUIET)


def test_20newsgroups_through_the_fetcher(monkeypatch):
    import sklearn.datasets
    from sklearn.utils import Bunch

    calls = []

    def fake(*, data_home, subset, remove):
        calls.append((data_home, subset, remove))
        data = [f"orbit moon {i}" if i % 2 else f"goal team {i}" for i in range(10 if subset == "train" else 4)]
        return Bunch(data=data, target=np.arange(len(data)) % 2, target_names=["rec.sport", "sci.space"])

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", fake)
    d = load_corpus("20newsgroups", data_dir="/tmp/cache", val_fraction=0.2, **QUIET)
    assert [c[1] for c in calls] == ["train", "test"] and calls[0][0] == "/tmp/cache"
    assert calls[0][2] == ("headers", "footers", "quotes")
    assert (len(d.train), len(d.val), len(d.test)) == (8, 2, 4)
    assert d.label_names == ("rec.sport", "sci.space") and d.y_test.tolist() == [0, 1, 0, 1]


@pytest.mark.skipif(not (BBC / "corpus.tsv").is_file(), reason="../shared/data/bbc_news is not present")
def test_bbc_news_as_shipped():
    d = load_corpus(f"corpus:{BBC}", **QUIET)
    assert d.shape == (2949,) and (len(d.train), len(d.val), len(d.test)) == (1556, 334, 335)
    assert d.label_names == ("business", "entertainment", "politics", "sport", "tech")
    assert sum(d.dropped.values()) == 0
    words = sum(float(s.values().sum()) for s in (d.train, d.val, d.test))
    assert words == 267259  # every token of the corpus is in its vocabulary


# --- bad input: one line, exit code 2, nothing written ----------------------------------------


def _train_args(root: Path, out: Path) -> list[str]:
    return ["-q", "train", "--data", f"corpus:{root}", "--model", "nvdm", "--epochs", "1", "--out", str(out)]


@pytest.mark.parametrize("case", ["empty", "no-train", "foreign-vocabulary", "non-utf8-tsv", "non-utf8-txt",
                                  "bad-split", "empty-folder"])
def test_bad_corpora(tmp_path, capsys, case):
    root = tmp_path / "c"
    if case == "empty":
        write_tsv(root, [])
        expect = "no documents"
    elif case == "no-train":
        write_tsv(root, ["a b\tval", "b c\ttest"])
        expect = "no training documents"
    elif case == "foreign-vocabulary":
        write_tsv(root, ["a b c\ttrain"] * 5 + ["b c\ttest"], vocab=["x", "y"])
        expect = "no word of vocabulary.txt"
    elif case == "non-utf8-tsv":
        root.mkdir()
        (root / "corpus.tsv").write_bytes(b"good words\ttrain\ncaf\xe9 au lait\ttrain\n")
        expect = "not UTF-8 text (bad byte 0xe9 on line 2)"
    elif case == "non-utf8-txt":
        (root / "x").mkdir(parents=True)
        (root / "x" / "1.txt").write_text("fine text", encoding="utf-8")
        (root / "x" / "2.txt").write_bytes("na\u00efve".encode("latin-1"))
        expect = "2.txt is not UTF-8"
    elif case == "bad-split":
        write_tsv(root, ["a b\ttrain"] * 5 + ["b c\ttesting"])
        expect = "split must be train, val or test"
    else:
        root.mkdir()
        expect = "no documents"
    err = _bad(_train_args(root, tmp_path / "run"), capsys)
    assert expect in err
    assert not (tmp_path / "run").exists()


def test_corpus_needs_the_multinomial_likelihood_and_back(tmp_path, capsys):
    root = write_tsv(tmp_path / "c", two_topic_lines())
    err = _bad(["-q", "train", "--data", f"corpus:{root}", "--out", str(tmp_path / "r")], capsys)
    assert "word counts" in err and "model nvdm" in err
    err = _bad(["-q", "train", "--likelihood", "multinomial", "--out", str(tmp_path / "r")], capsys)
    assert "corpus:PATH" in err
    err = _bad([*_train_args(root, tmp_path / "r"), "--likelihood", "gaussian"], capsys)
    assert "always uses the multinomial likelihood" in err
    assert not (tmp_path / "r").exists()
