"""Tests for vaelab.data: digits, the IDX reader, the (mocked) download and the system dataset."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from clitools import no_downloads

from vaelab.data import DATASETS, binarize, idx, load_images
from vaelab.errors import DataError

FMNIST_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test may touch the network, the real cache, $VAELAB_DATA or the system dataset."""
    no_downloads(monkeypatch, tmp_path)
    monkeypatch.setattr(idx, "SYSTEM_DIRS", {})


def idx_bytes(a: np.ndarray, magic: int) -> bytes:
    """Gzipped IDX encoding of a uint8 array."""
    head = struct.pack(">I", magic) + struct.pack(f">{a.ndim}I", *a.shape)
    return gzip.compress(head + a.astype(np.uint8).tobytes())


def write_idx_set(d: Path, n_train: int = 10, n_test: int = 4) -> dict[str, np.ndarray]:
    """Four small IDX files with known contents."""
    rng = np.random.default_rng(1)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": np.arange(n_train, dtype=np.uint8) % 10,
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": np.arange(n_test, dtype=np.uint8)[::-1].copy()}
    d.mkdir(parents=True, exist_ok=True)
    for f, a in arrays.items():
        (d / f).write_bytes(idx_bytes(a, idx.LABELS_MAGIC if "labels" in f else idx.IMAGES_MAGIC))
    return arrays


def rows(t: torch.Tensor) -> set[bytes]:
    return {bytes(r.numpy().tobytes()) for r in t}


# --- digits -------------------------------------------------------------------------------

def test_digits_shapes_scale_and_splits():
    d = load_images("digits", val_fraction=0.1, split_seed=0)
    assert d.name == "digits" and d.shape == (1, 8, 8) and d.dim == 64
    assert d.scale == 1 / 16 and d.train.dtype == torch.uint8
    assert int(d.train.max()) == 16 and int(d.train.min()) == 0
    assert (len(d.test), len(d.val), len(d.train)) == (359, 144, 1294)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert d.y_train.dtype == torch.int64 and set(d.y_train.tolist()) == set(range(10))
    assert len(d.y_val) == len(d.val) and len(d.y_test) == len(d.test)


def test_digits_test_split_fixed_and_val_depends_on_seed():
    a = load_images("digits", split_seed=0)
    b = load_images("digits", split_seed=1)
    assert torch.equal(a.test, b.test) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.val, b.val)
    assert torch.equal(load_images("digits", split_seed=1).val, b.val)
    # The same pool (train + val) is re-split; both splits stay disjoint from test by index.
    from sklearn.datasets import load_digits
    full = load_digits().images.reshape(-1, 64).astype(np.uint8)
    pool = torch.cat([a.train, a.val])
    assert len(pool) + len(a.test) == len(full)
    assert sorted(map(bytes, pool.numpy())) == sorted(map(bytes, torch.cat([b.train, b.val]).numpy()))


def test_val_fraction_zero_and_invalid():
    d = load_images("digits", val_fraction=0.0)
    assert d.val.shape == (0, 64) and len(d.train) == 1438
    with pytest.raises(DataError, match="val_fraction"):
        load_images("digits", val_fraction=1.0)


def test_global_rng_untouched():
    torch.manual_seed(5)
    np.random.seed(5)
    load_images("digits", split_seed=3)
    after = (torch.rand(1).item(), np.random.rand())
    torch.manual_seed(5)
    np.random.seed(5)
    assert after == (torch.rand(1).item(), np.random.rand())


# --- IDX ----------------------------------------------------------------------------------

def test_idx_round_trip_via_data_dir(tmp_path):
    arrays = write_idx_set(tmp_path / "d", n_train=10, n_test=4)
    d = load_images("mnist", data_dir=str(tmp_path / "d"), val_fraction=0.2, split_seed=0)
    assert d.shape == (1, 28, 28) and d.scale == 1 / 255 and d.train.dtype == torch.uint8
    assert (len(d.train), len(d.val), len(d.test)) == (8, 2, 4)
    assert torch.equal(d.test, torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"].reshape(4, 784)))
    assert d.y_test.tolist() == [3, 2, 1, 0]
    # train + val are exactly the training images, with their labels attached.
    full = arrays["train-images-idx3-ubyte.gz"].reshape(10, 784)
    for x, y in zip(torch.cat([d.train, d.val]), torch.cat([d.y_train, d.y_val])):
        i = next(i for i in range(10) if np.array_equal(full[i], x.numpy()))
        assert y.item() == i % 10
    assert rows(torch.cat([d.train, d.val])) == rows(torch.from_numpy(full))


def test_idx_via_env_and_subfolder(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "root" / "fashion-mnist", n_train=6, n_test=3)
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    d = load_images("fashion-mnist", val_fraction=0.5)
    assert (len(d.train), len(d.val), len(d.test)) == (3, 3, 3)
    assert d.name == "fashion-mnist"


def test_idx_truncated(tmp_path):
    write_idx_set(tmp_path)
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_images("mnist", data_dir=str(tmp_path))


def test_idx_short_payload(tmp_path):
    f = tmp_path / "x.gz"
    f.write_bytes(gzip.compress(struct.pack(">IIII", idx.IMAGES_MAGIC, 2, 28, 28) + bytes(100)))
    with pytest.raises(DataError, match=r"x\.gz: IDX payload has 100 bytes"):
        idx.read_idx(f, idx.IMAGES_MAGIC)


def test_idx_wrong_magic(tmp_path):
    write_idx_set(tmp_path)
    labels = np.zeros(10, np.uint8)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(idx_bytes(labels, idx.IMAGES_MAGIC))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: bad IDX magic"):
        load_images("mnist", data_dir=str(tmp_path))


def test_idx_bad_gzip(tmp_path):
    f = tmp_path / "t.gz"
    f.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="t.gz: not a readable gzip"):
        idx.read_idx(f, idx.LABELS_MAGIC)


def test_idx_missing_file(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_images("mnist", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="file not found"):
        idx.read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", idx.LABELS_MAGIC)


def test_idx_label_count_mismatch(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(idx_bytes(np.zeros(3, np.uint8), idx.LABELS_MAGIC))
    with pytest.raises(DataError, match="4 images but its labels file has 3"):
        load_images("mnist", data_dir=str(tmp_path))


def test_cache_respects_xdg(tmp_path):
    assert idx.cache_dir("mnist") == tmp_path / "cache" / "vaelab" / "mnist"
    dirs = idx.candidate_dirs("mnist", str(tmp_path / "d"))
    assert dirs == [tmp_path / "d", tmp_path / "d" / "mnist", tmp_path / "cache" / "vaelab" / "mnist"]


# --- download (mocked) -----------------------------------------------------------------------

def serve(monkeypatch, payloads: dict[str, bytes], log: list[str]) -> None:
    def fake_urlopen(url, timeout=None):
        log.append(url)
        return io.BytesIO(payloads[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(idx.urllib.request, "urlopen", fake_urlopen)


def test_download_sha_mismatch_leaves_nothing(tmp_path, monkeypatch):
    log: list[str] = []
    serve(monkeypatch, {f: b"wrong bytes" for f in idx.FILES}, log)
    with pytest.raises(DataError, match="SHA-256") as e:
        load_images("mnist")
    assert "--data-dir" in str(e.value) and "VAELAB_DATA" in str(e.value)
    assert log[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert not (tmp_path / "cache").exists()  # not even the empty cache folders are left behind


def test_download_offline_message(monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(idx.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_images("fashion-mnist")


def test_download_match_lands_in_place(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_idx_set(src, n_train=5, n_test=2)
    payloads = {f: (src / f).read_bytes() for f in idx.FILES}
    monkeypatch.setitem(idx.SHA256, "mnist", {f: hashlib.sha256(b).hexdigest() for f, b in payloads.items()})
    log: list[str] = []
    serve(monkeypatch, payloads, log)
    d = load_images("mnist", val_fraction=0.2)
    cache = tmp_path / "cache" / "vaelab" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(idx.FILES)
    assert all((cache / f).read_bytes() == b for f, b in payloads.items())
    assert (len(d.train), len(d.val), len(d.test)) == (4, 1, 2) and len(log) == 4
    load_images("mnist")  # now served from the cache
    assert len(log) == 4


def test_sha_constants_well_formed():
    for sums in (*idx.SHA256.values(), *idx.PAYLOAD_SHA256.values()):
        assert set(sums) == set(idx.FILES)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in sums.values())


# --- misc ------------------------------------------------------------------------------------

def test_unknown_dataset():
    with pytest.raises(DataError) as e:
        load_images("xyz")
    assert str(e.value) == ("unknown dataset 'xyz'; choose from digits, shapes, mnist, fashion-mnist, photo-patches, "
                            "npz:PATH, folder:PATH, npy:DIR, bbc_news, corpus:PATH, 20newsgroups")
    assert DATASETS == ("digits", "shapes", "mnist", "fashion-mnist", "photo-patches", "npz:PATH", "folder:PATH",
                        "npy:DIR")
    with pytest.raises(DataError, match="unknown dataset"):
        load_images("npz:")


def test_binarize():
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(20000, 1)
    a = binarize(p, torch.Generator().manual_seed(0))
    b = binarize(p, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.dtype == torch.float32
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(a.mean(0), p[0], atol=0.015)
    assert a[:, 0].sum() == 0 and a[:, 4].sum() == 20000
    assert not torch.equal(a, binarize(p, torch.Generator().manual_seed(1)))


@pytest.mark.skipif(not FMNIST_SYSTEM.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_system_fashion_mnist(monkeypatch):
    monkeypatch.setattr(idx, "SYSTEM_DIRS", {"fashion-mnist": (FMNIST_SYSTEM,)})
    d = load_images("fashion-mnist", val_fraction=0.1)
    assert (len(d.train), len(d.val), len(d.test)) == (54000, 6000, 10000)
    assert d.shape == (1, 28, 28) and d.train.dtype == torch.uint8 and int(d.train.max()) == 255
    assert d.y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert torch.bincount(d.y_test).tolist() == [1000] * 10
    # Debian re-wraps the canonical gzip streams, so the decompressed bytes are what must match.
    for f in idx.FILES:
        assert idx.payload_sha256(FMNIST_SYSTEM / f) == idx.PAYLOAD_SHA256["fashion-mnist"][f]


@pytest.mark.skipif(not FMNIST_SYSTEM.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_system_fashion_mnist_matches_download_sha():
    # The Debian files are the canonical deflate streams without the original gzip name/mtime
    # header; restoring that header must reproduce the mirror's bytes, i.e. the download SHA-256.
    mtimes = {"train": 1504176606, "t10k": 1504176627}
    for f in idx.FILES:
        raw = (FMNIST_SYSTEM / f).read_bytes()
        assert raw[:4] == b"\x1f\x8b\x08\x00"  # no optional header fields: the body starts at byte 10
        head = b"\x1f\x8b\x08\x08" + struct.pack("<I", mtimes[f.split("-")[0]])
        canonical = head + b"\x00\x03" + f[:-3].encode() + b"\x00" + raw[10:]
        assert hashlib.sha256(canonical).hexdigest() == idx.SHA256["fashion-mnist"][f]
