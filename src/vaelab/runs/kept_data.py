"""What a run keeps of its data, so that its own commands work from any directory with the run folder alone.

    RUN/data-source.json  the files the run trained on: absolute path, size and SHA-256 of each (none for the
                          bundled digits and scikit-learn's 20newsgroups); `evaluate` on the original data refuses
                          files that are gone or differ, rather than scoring other data under the run's name
    RUN/data-view.npz     what plot, explore, topics, topics --docs and vaelab.encode read: the examples' shape and
                          scale, the test split and its labels, and for word counts the training split (topic shares)
                          and the vocabulary with the label names. Plain arrays, read back without pickle.
    RUN/text-reading.json for a document run, how new text is read onto its vocabulary (lower-casing, tokens, the
                          stop words, the lemmatiser and its version, the ending rules: topics/normalise.py), so
                          `topics --docs` and vaelab.encode read it as the run did wherever they run

A relative data path (npz:my.npz, corpus:texts/) and data_dir are made absolute before the config is saved, so
the run names its data the same from any working directory. Runs trained before these files existed load their data
as before.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..config import schema as cfg
from ..data import CorpusData, ImageData, idx, is_corpus, named
from ..data.images import IMAGE_EXTS
from ..data.npfiles import read_npz
from ..data.regular_files import open_regular
from ..errors import DataError, VaelabError
from . import inputs
from .folder import DATA_SOURCE, DATA_VIEW, TEXT_READING, RunFolder

SOURCE, VIEW = DATA_SOURCE, DATA_VIEW
PATH_KINDS = ("npz", "npy", "folder", "corpus")  # data = "KIND:PATH"
CHUNK = 1 << 20


def absolute(c: cfg.Config) -> cfg.Config:
    """c with a relative data path and data_dir made absolute (as the working directory resolves them now)."""
    kind, sep, path = c.data.partition(":")
    changes: dict[str, Any] = {}
    if sep and kind in PATH_KINDS and path and not (kind == "corpus" and path == "20newsgroups"):
        full = Path(path).expanduser()
        if not full.is_absolute():
            changes["data"] = f"{kind}:{full.absolute()}"
    if c.data_dir and not Path(c.data_dir).expanduser().is_absolute():
        changes["data_dir"] = str(Path(c.data_dir).expanduser().absolute())
    return c.replace(**changes) if changes else c


def _files_under(root: Path, keep=lambda p: True) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and keep(p))


def source_files(c: cfg.Config) -> list[Path]:
    """The files c's data is read from, absolute and sorted; [] for data that ships with a library."""
    kind, sep, path = c.data.partition(":")
    if c.data in ("mnist", "fashion-mnist"):
        d = idx.find_files(c.data, c.data_dir)
        return [(d / f).absolute() for f in idx.FILES]
    if c.data in named.NAMED:
        return _files_under(named.find(c.data, c.data_dir).absolute())
    if not sep or kind not in PATH_KINDS or (kind == "corpus" and path == "20newsgroups"):
        return []
    root = Path(path).expanduser().absolute()
    if kind == "npz":
        return [root]
    if kind == "npy":
        return sorted(p for p in root.glob("*.npy") if p.is_file())
    if kind == "folder":
        return _files_under(root, lambda p: p.suffix.lower() in IMAGE_EXTS)
    return _files_under(root)


def fingerprint(path: Path, where: str | None = None) -> dict[str, Any]:
    """{"path", "bytes", "sha256"} of one regular file (a FIFO or device is one DataError, never read)."""
    h, size = hashlib.sha256(), 0
    with open_regular(path, where) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return {"path": str(path), "bytes": size, "sha256": h.hexdigest()}


def _view_arrays(data: ImageData | CorpusData) -> dict[str, np.ndarray]:
    out = {"name": np.array(data.name), "shape": np.array(data.shape, dtype=np.int64),
           "scale": np.array(data.scale, dtype=np.float64)}
    splits = ("train", "test") if is_corpus(data) else ("test",)
    for s in splits:
        x, y = getattr(data, s), getattr(data, f"y_{s}")
        if x.layout == torch.sparse_csr:  # word counts: the CSR parts, (N + 1,), (nnz,), (nnz,)
            out |= {f"{s}_crow": x.crow_indices().numpy(), f"{s}_col": x.col_indices().numpy(),
                    f"{s}_values": x.values().numpy()}
        else:
            out[s] = x.numpy()
        if y is not None:
            out[f"y_{s}"] = y.numpy()
    if is_corpus(data):
        out["vocabulary"] = np.array(data.vocabulary, dtype=str)
        if data.label_names is not None:
            out["label_names"] = np.array(data.label_names, dtype=str)
    return out


def keep(run: str | Path, c: cfg.Config, data: ImageData | CorpusData, reading: dict[str, Any] | None = None) -> None:
    """Write RUN/data-source.json and RUN/data-view.npz for a run about to train on data (from config c), and
    RUN/text-reading.json when given how new text is to be read (a document run)."""
    folder = RunFolder(run)
    try:
        files = [fingerprint(p) for p in source_files(c)]
    except OSError as e:
        raise DataError(f"{c.data}: cannot read its files to fingerprint them ({e})") from None
    folder.write_json(SOURCE, {"data": c.data, "data_dir": c.data_dir, "files": files})
    buf = io.BytesIO()
    np.savez(buf, **_view_arrays(data))
    atomic_write(folder.path / VIEW, buf.getvalue())
    if reading is not None:
        folder.write_json(TEXT_READING, reading)


def reading(run: str | Path) -> Any:
    """The text reading a document run recorded (RUN/text-reading.json), None for a run without one; a file that
    is not JSON is a VaelabError (its fields are checked by topics/normalise.py)."""
    path = RunFolder(run).path / TEXT_READING
    if not path.is_file():
        return None
    kept = RunFolder(run).read_json(TEXT_READING)
    if kept is None:
        raise VaelabError(f"{path} is damaged (not JSON); train the run again")
    return kept


def check_source(run: str | Path, c: cfg.Config) -> cfg.Config:
    """c to evaluate with, after refusing data whose files are gone or differ from those the run trained on (c as
    it is for runs without RUN/data-source.json). Arrays given to train() are read from the run folder where it
    is now (a copied run scores its own RUN/data.npz)."""
    folder = RunFolder(run)
    if not (folder.path / SOURCE).is_file():
        return c
    kept = folder.read_json(SOURCE)
    files = kept.get("files", [])
    own = folder.data_arrays.absolute()
    if len(files) == 1 and c.data == f"npz:{files[0]['path']}" and Path(files[0]["path"]).name == own.name \
            and own.is_file():
        c, files = c.replace(data=f"npz:{own}"), [files[0] | {"path": str(own)}]
    for f in files:
        p = Path(f["path"])
        if not p.exists() and not p.is_symlink():
            raise DataError(f"{c.data}: the run trained on {p}, which is gone; put the data back there, or evaluate "
                            f"another copy with data=... (plots, explore and topics need no data)")
        now = fingerprint(p, f"{c.data}: {p}")
        if (now["bytes"], now["sha256"]) != (f["bytes"], f["sha256"]):
            raise DataError(f"{c.data}: {p} has changed since the run trained ({now['bytes']} bytes, SHA-256 "
                            f"{now['sha256'][:12]}..., was {f['bytes']} bytes, {f['sha256'][:12]}...); refusing to "
                            f"score other data under this run's name")
    extra = sorted({str(p) for p in source_files(c)} - {f["path"] for f in files})
    if extra:  # a folder that gained files (an image, a document) is other data too
        raise DataError(f"{c.data}: holds {len(extra)} file(s) the run did not train on (first: {extra[0]}); "
                        f"refusing to score other data under this run's name")
    return c


def _csr(a: dict[str, np.ndarray], s: str, width: int) -> torch.Tensor:
    crow, col, val = (torch.from_numpy(a[f"{s}_{k}"]) for k in ("crow", "col", "values"))
    return torch.sparse_csr_tensor(crow, col, val, size=(len(crow) - 1, width))


def view(run: str | Path) -> ImageData | CorpusData | None:
    """The data a run keeps (RUN/data-view.npz): the test split (and for word counts the training split and the
    vocabulary), splits it did not keep empty; None for a run without one."""
    path = RunFolder(run).path / VIEW
    if not path.is_file():
        return None
    a = read_npz(f"{path}", path)
    try:
        shape, scale, name = tuple(int(v) for v in a["shape"]), float(a["scale"]), str(a["name"])
        labels = {s: (torch.from_numpy(a[f"y_{s}"]) if f"y_{s}" in a else None) for s in ("train", "test")}
        if "vocabulary" in a:
            empty = torch.sparse_csr_tensor(torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
                                            torch.zeros(0), size=(0, shape[0]))
            return CorpusData(name=name, shape=shape, train=_csr(a, "train", shape[0]), val=empty,
                              test=_csr(a, "test", shape[0]), y_train=labels["train"], y_val=None,
                              y_test=labels["test"], vocabulary=tuple(str(w) for w in a["vocabulary"]),
                              label_names=tuple(str(w) for w in a["label_names"]) if "label_names" in a else None)
        test = torch.from_numpy(a["test"])
        return ImageData(name=name, shape=shape, train=test[:0], val=test[:0], test=test, y_train=None, y_val=None,
                         y_test=labels["test"], scale=scale)
    except (KeyError, ValueError, RuntimeError) as e:
        raise VaelabError(f"{path} is damaged ({type(e).__name__}: {e}); train the run again") from None


def run_data(run: str | Path, c: cfg.Config) -> ImageData | CorpusData:
    """The data a run's plots, explorer and topics read: what the run keeps, else its config's data (older runs)."""
    kept = view(run)
    return kept if kept is not None else inputs.load_data(c)
