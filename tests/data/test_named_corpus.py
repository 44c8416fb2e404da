"""`vaelab train --config nvdm-bbc` from any directory: the named corpus is found through --data-dir,
$VAELAB_DATA or the cache (a checked download), or refused in one line saying where to put it."""

import hashlib
import io
import json
import urllib.error
from pathlib import Path

import pytest
from clitools import expect_error, no_downloads
from paths import ROOT

from vaelab.cli.main import run as cli
from vaelab.data import idx, load_corpus, named
from vaelab.errors import DataError
from vaelab.runs.checkpoint import read_shape

SHARED = ROOT / ".." / "shared" / "data" / "bbc_news"
WORDS = ["market", "bank", "film", "music", "vote", "party", "match", "goal", "phone", "web", "price", "star"]
TINY = ["--epochs", "1", "--no-report", "--hidden", "8", "--latent-dim", "2", "--batch-size", "8", "--device", "cpu",
        "--eval-k", "5"]


@pytest.fixture(autouse=True)
def elsewhere(monkeypatch, tmp_path):
    """A working directory with no data near it, no network, a private cache and no $VAELAB_DATA."""
    no_downloads(monkeypatch, tmp_path)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def _tiny_octis(folder: Path) -> dict[str, bytes]:
    """A 30-document OCTIS folder over 12 words (train 18, val 6, test 6); returns its files' bytes."""
    lines = []
    for i in range(30):
        split = "train" if i < 18 else "val" if i < 24 else "test"
        doc = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(5))
        lines.append(f"{doc}\t{split}\t{'ab'[i % 2]}")
    files = {"corpus.tsv": ("\n".join(lines) + "\n").encode(), "vocabulary.txt": ("\n".join(WORDS) + "\n").encode(),
             "metadata.json": json.dumps({"total_documents": 30}).encode()}
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    return files


def test_the_shipped_config_finds_the_corpus_from_any_directory(tmp_path):
    _tiny_octis(tmp_path / "data" / "bbc_news")
    out = tmp_path / "run"
    assert cli(["-q", "train", "--config", "nvdm-bbc", "--data-dir", str(tmp_path / "data"),
                "--out", str(out), *TINY]) == 0
    assert 'data = "bbc_news"' in (out / "config.toml").read_text()
    assert read_shape(out / "model.safetensors") == (len(WORDS),)  # the found corpus's vocabulary


def test_vaelab_data_and_the_folder_itself(tmp_path, monkeypatch):
    _tiny_octis(tmp_path / "root" / "bbc_news")
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    c = load_corpus("bbc_news", log=lambda s: None)
    assert c.train.shape[0] + c.val.shape[0] == 24
    assert c.test.shape[0] == 6 and c.vocabulary == tuple(WORDS)
    monkeypatch.delenv("VAELAB_DATA")
    c = load_corpus("bbc_news", data_dir=str(tmp_path / "root" / "bbc_news"), log=lambda s: None)
    assert c.test.shape[0] == 6


def test_missing_corpus_is_refused_in_one_line_saying_where_to_put_it(tmp_path, monkeypatch, capsys):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(idx.urllib.request, "urlopen", offline)
    err = expect_error(["-q", "train", "--config", "nvdm-bbc", "--out", str(tmp_path / "run"), *TINY], capsys)
    assert "bbc_news: not found" in err and "DIR/bbc_news/" in err
    assert "--data-dir DIR" in err and "$VAELAB_DATA=DIR" in err and "corpus.tsv" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache" / "vaelab").exists()


def _serve(monkeypatch, files: dict[str, bytes], log: list[str]) -> None:
    def fake_urlopen(url, timeout=None):
        log.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(idx.urllib.request, "urlopen", fake_urlopen)


def test_checked_download_into_the_cache(tmp_path, monkeypatch):
    files = _tiny_octis(tmp_path / "served")
    sums = {f: hashlib.sha256(b).hexdigest() for f, b in files.items()}
    monkeypatch.setitem(named.NAMED, "bbc_news", named.Source("a test corpus", "https://example.org/bbc/", sums))
    log: list[str] = []
    _serve(monkeypatch, dict(files, **{"corpus.tsv": b"tampered\ttrain\n"}), log)
    with pytest.raises(DataError, match="SHA-256"):
        load_corpus("bbc_news", log=lambda s: None)
    assert not (tmp_path / "cache" / "vaelab").exists()  # a bad file leaves nothing behind
    _serve(monkeypatch, files, log)
    c = load_corpus("bbc_news", log=lambda s: None)
    cache = tmp_path / "cache" / "vaelab" / "bbc_news"
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == files and c.test.shape[0] == 6
    assert log[-1].startswith("https://example.org/bbc/")
    fetched = len(log)
    load_corpus("bbc_news", log=lambda s: None)  # the second time, from the cache
    assert len(log) == fetched


def test_the_pinned_source_is_octis_and_its_hashes_match_the_shared_copy():
    source = named.NAMED["bbc_news"]
    assert source.base.startswith("https://raw.githubusercontent.com/MIND-Lab/OCTIS/")
    assert source.base.endswith("/preprocessed_datasets/BBC_News/")
    if not (SHARED / "corpus.tsv").is_file():
        pytest.skip("../shared/data/bbc_news is not present")
    for name, digest in source.sha256.items():
        assert hashlib.sha256((SHARED / name).read_bytes()).hexdigest() == digest, name
