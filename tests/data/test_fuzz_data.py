"""Fuzzing the loaders: random bytes, truncations, wrong dtypes, huge declared shapes (issue 11).

Each case ends in a correct load or a VaelabError with a one-line message, and writes nothing.
"""

import gzip
import io
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from fuzzing import listing, outcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vaelab.data import idx, load_corpus, load_images


def fuzz(n: int) -> settings:
    """n generated cases, no deadline (the machine is shared), no example database written into the checkout."""
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)
DTYPES = ["|u1", "<f4", "<f8", "|b1", "<i8", "<u2", "|O", "<c8", "|S3", "<U2", "|V4", ">f4"]
shapes = st.one_of(
    st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple),
    st.tuples(st.sampled_from([2**31, 2**40, 2**62]), st.integers(1, 2**20)),  # allocations no machine has
)


def _header(shape, dtype) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": dtype, "fortran_order": False, "shape": shape})
    return b.getvalue()


@st.composite
def npy_bytes(draw):
    """An .npy file: a valid array, a header with random (or missing) data, or random bytes."""
    kind = draw(st.sampled_from(["array", "header", "bytes"]))
    if kind == "array":
        shape = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple))
        dtype = draw(st.sampled_from(["u1", "f4", "f8", "i8", "?"]))
        a = draw(st.integers(0, 255).map(lambda v: np.full(shape, v).astype(dtype)))
        if dtype[0] == "f":
            with np.errstate(divide="ignore", invalid="ignore"):
                a = a / draw(st.sampled_from([1.0, 255.0, 0.0]))  # values in [0, 1], above 1, inf or nan
        b = io.BytesIO()
        np.save(b, a)
        data = b.getvalue()
    elif kind == "header":
        data = _header(draw(shapes), draw(st.sampled_from(DTYPES))) + draw(st.binary(max_size=64))
    else:
        data = draw(st.binary(max_size=200))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))  # a truncation
    return data if cut is None else data[:cut]


def _check_images(d):
    """A correct load: splits as promised, values scaled into [0, 1]."""
    assert len(d.train) >= 1 and len(d.test) >= 1 and d.dim >= 1
    assert d.test.shape[1] == d.dim and d.val.shape[1] == d.dim
    x = d.test.float() * d.scale
    assert bool(((x >= 0) & (x <= 1)).all())


@fuzz(1500)
@given(members=st.dictionaries(st.sampled_from(["x_train", "x_test", "x", "y_train", "y_test", "y"]), npy_bytes(),
                               max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 400)), stored=st.booleans())
def test_npz(members, cut, stored):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.npz"
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name + ".npy", data)
        raw = b.getvalue()
        path.write_bytes(raw if cut is None else raw[:cut])
        before = listing(Path(tmp))
        d = outcome(load_images, f"npz:{path}")
        if d is not None:
            _check_images(d)
        assert listing(Path(tmp)) == before


@fuzz(800)
@given(files=st.dictionaries(st.sampled_from(["x_train", "x_test", "y_train", "y_test"]), npy_bytes(), max_size=4),
       val=st.sampled_from([0.0, 0.1, 0.5]))
def test_npy_folder(files, val):
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / f"{name}.npy").write_bytes(data)
        before = listing(Path(tmp))
        d = outcome(load_images, f"npy:{tmp}", val_fraction=val)
        if d is not None:
            assert len(d.train) >= 1 and len(d.test) >= 1 and d.dim >= 1
        assert listing(Path(tmp)) == before


def _png_claiming(w, h) -> bytes:
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""))


@st.composite
def image_bytes(draw):
    kind = draw(st.sampled_from(["image", "claim", "bytes", "cut"]))
    if kind == "claim":
        return _png_claiming(draw(st.integers(1, 2**31 - 1)), draw(st.integers(1, 2**31 - 1)))
    if kind == "bytes":
        return draw(st.binary(max_size=100))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "1", "P", "I;16"]))
    size = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    fmt = draw(st.sampled_from(["PNG", "BMP", "GIF"] if mode != "I;16" else ["PNG"]))
    b = io.BytesIO()
    Image.new(mode, size, draw(st.integers(0, 255))).save(b, fmt)
    data = b.getvalue()
    return data if kind == "image" else data[:draw(st.integers(0, len(data)))]


@fuzz(400)
@given(files=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([".png", ".jpg", ".bmp", ".gif"]),
                                image_bytes()), max_size=5),
       size=st.sampled_from([1, 4, 8]))
def test_image_folder(files, size):
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, ext, data) in enumerate(files):
            (Path(tmp) / label).mkdir(exist_ok=True)
            (Path(tmp) / label / f"{i}{ext}").write_bytes(data)
        before = listing(Path(tmp))
        d = outcome(load_images, f"folder:{tmp}", image_size=size)
        if d is not None:
            _check_images(d)
            # grey unless some image is in colour (folder: keeps what the images are, data/channels.py)
            assert d.shape in ((1, size, size), (3, size, size))
            if d.shape[0] == 3:
                rgb = torch.cat([d.train, d.val, d.test]).reshape(-1, 3, size * size)
                assert bool((rgb[:, 0] != rgb[:, 1]).any() | (rgb[:, 1] != rgb[:, 2]).any())
        assert listing(Path(tmp)) == before


@fuzz(800)
@given(magic=st.sampled_from([idx.IMAGES_MAGIC, idx.LABELS_MAGIC, 0x0803, 0]),
       dims=st.lists(st.one_of(st.integers(0, 4), st.just(2**32 - 1)), max_size=4),
       payload=st.binary(max_size=80), zipped=st.sampled_from(["gzip", "raw", "cut"]))
def test_idx(magic, dims, payload, zipped):
    raw = struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload
    data = gzip.compress(raw) if zipped != "raw" else raw
    if zipped == "cut":
        data = data[:len(data) // 2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.gz"
        path.write_bytes(data)
        want = idx.IMAGES_MAGIC if magic == 0 else magic
        a = outcome(idx.read_idx, path, want)
        if a is not None:
            ndim = want & 0xFF  # the magic's last byte
            head = 4 + 4 * ndim
            assert a.dtype == np.uint8 and a.ndim == ndim and a.tobytes() == raw[head:]
            assert a.shape == struct.unpack(f">{ndim}I", raw[4:head])


LINE = st.tuples(st.text(alphabet="ab cd\t\x00é\r", max_size=12), st.sampled_from(["train", "test", "val", "x", ""]),
                 st.one_of(st.none(), st.text(alphabet="xy", max_size=2)))


@fuzz(250)
@given(lines=st.lists(LINE, max_size=8), vocab=st.one_of(st.none(), st.binary(max_size=30), st.just(b"ab\ncd\n")),
       junk=st.one_of(st.none(), st.binary(max_size=60)))
def test_corpus(lines, vocab, junk):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = "\n".join("\t".join(p for p in line if p is not None) for line in lines)
        (root / "corpus.tsv").write_bytes(junk if junk is not None else text.encode("utf-8"))
        if vocab is not None:
            (root / "vocabulary.txt").write_bytes(vocab)
        before = listing(root)
        d = outcome(load_corpus, f"corpus:{tmp}", log=lambda s: None)
        if d is not None:
            assert d.train.shape[0] >= 1 and d.test.shape[0] >= 1 and d.train.shape[1] == len(d.vocabulary)
        assert listing(root) == before
