"""IDX (.gz) files of MNIST and Fashion-MNIST: finding, reading and downloading them."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# Order matters only for messages: train images, train labels, test images, test labels.
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

MIRRORS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}
# SHA-256 of the .gz files exactly as the mirrors serve them.
SHA256 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
}
# SHA-256 of the decompressed IDX bytes. Debian's dataset-fashion-mnist re-wraps the same
# deflate streams in a different gzip header, so only the payload hash matches there.
PAYLOAD_SHA256 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
SYSTEM_DIRS = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}
TIMEOUT_S = 60.0


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array stored in a gzipped IDX file, checked against the expected magic."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; truncation is EOFError
        raise DataError(f"{path}: not a readable gzip file ({e})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: too short for an IDX header")
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        raise DataError(f"{path}: bad IDX magic 0x{found:08x} (expected 0x{magic:08x})")
    ndim = magic & 0xFF
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    expected = math.prod(dims)
    if len(raw) - head != expected:
        raise DataError(f"{path}: IDX payload has {len(raw) - head} bytes, header {dims} needs {expected}")
    try:
        return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims).copy()
    except ValueError:  # dims numpy cannot index, e.g. (2**32 - 1, 2**32 - 1, 0)
        raise DataError(f"{path}: IDX header declares dims {dims} that no array can have") from None


def payload_sha256(path: Path) -> str:
    """SHA-256 of a gzip file's decompressed bytes."""
    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir(name: str) -> Path:
    """~/.cache/vaelab/<name>, honouring $XDG_CACHE_HOME."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "vaelab" / name


def candidate_dirs(name: str, data_dir: str | None) -> list[Path]:
    """Folders searched for the IDX files, in order; the cache comes last."""
    dirs: list[Path] = []
    for base in (data_dir, os.environ.get("VAELAB_DATA")):
        if base:
            p = Path(base).expanduser()
            dirs += [p, p / name]
    return dirs + list(SYSTEM_DIRS.get(name, ())) + [cache_dir(name)]


def find_files(name: str, data_dir: str | None) -> Path:
    """The folder holding all four IDX files, downloading into the cache when none does."""
    dirs = candidate_dirs(name, data_dir)
    for d in dirs:
        present = [f for f in FILES if (d / f).is_file()]
        if len(present) == len(FILES):
            return d
        # A folder the user pointed at with only some files is a mistake, not a reason to download.
        if present and d != cache_dir(name):
            missing = ", ".join(f for f in FILES if f not in present)
            raise DataError(f"{name}: {d} has only some of the IDX files (missing {missing})")
    try:
        download(name, cache_dir(name))
    except DataError as e:
        looked = ", ".join(str(d) for d in dirs)
        hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
        raise DataError(f"{name}: IDX files not found (looked in {looked}) and {e}; put the four "
                        f".gz files in a folder and pass data_dir (--data-dir) or set $VAELAB_DATA{hint}") from None
    return cache_dir(name)


def _fetch(url: str, dest: Path) -> str:
    """Stream url into dest; returns the SHA-256 of what was written."""
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r, open(dest, "wb") as f:
        for block in iter(lambda: r.read(1 << 20), b""):
            h.update(block)
            try:
                f.write(block)
            except OSError as e:  # a full disk names no file: say which one
                raise OSError(e.errno, e.strerror or str(e), str(dest)) from e
    return h.hexdigest()


def download(name: str, dest: Path) -> None:
    """Fetch the missing IDX files of name into dest; all-or-nothing, checked by SHA-256."""
    download_checked(MIRRORS[name], {f: SHA256[name][f] for f in FILES}, dest)


def download_checked(base: str, sums: dict[str, str], dest: Path) -> None:
    """Fetch base + every file of sums missing from dest; all-or-nothing, each checked by its SHA-256."""
    todo = [f for f in sums if not (dest / f).is_file()]
    created = [p for p in (dest, *dest.parents) if not p.exists()]  # deepest first, removed on failure
    temps: dict[str, Path] = {}
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for fname in todo:
            fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=dest)
            os.close(fd)
            temps[fname] = Path(tmp)
            got = _fetch(base + fname, temps[fname])
            if got != sums[fname]:
                raise DataError(f"download of {base + fname} has SHA-256 {got}, expected {sums[fname]}")
        # Rename only once every file is verified, so a failure never leaves a partial set.
        for fname, tmp in temps.items():
            os.replace(tmp, dest / fname)
        temps.clear()
    except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError
        raise DataError(f"download from {base} failed ({e})") from None
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        for p in created:
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
