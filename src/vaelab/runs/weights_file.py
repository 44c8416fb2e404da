"""A safetensors file read the safe way: the 8-byte length and the JSON header first, then only the tensors asked for.

A safetensors file is an unsigned 64-bit little-endian header length n, n bytes of JSON (name -> dtype,
shape, data_offsets; "__metadata__" -> strings), then the tensors' bytes. Reading the whole file before
looking at its header makes a 3 GB file (or a header that claims 2**62 bytes) cost its size in memory
before anything can be refused. Here the header is parsed and checked against the file's size alone, the
caller compares the tensors it describes (meta tensors: dtype and shape, no data) with the model, and
only then are the tensors read, through safetensors' memory map of the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError, safe_open

from ..data.regular_files import open_regular
from ..errors import CheckpointError

MAX_HEADER = 100_000_000  # bytes; safetensors refuses longer headers too
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


def read_header(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The file's tensors as meta tensors (their dtype and shape; no data is read) and its string metadata."""
    try:
        with open_regular(path, error=CheckpointError) as f:  # a FIFO would block, a device never end
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: {size} bytes, too short for a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if not 2 <= n <= min(MAX_HEADER, size - 8):
                raise CheckpointError(f"{path}: header length {n} does not fit a file of {size} bytes "
                                      f"(a safetensors header is 2 to {MAX_HEADER} bytes)")
            header = json.loads(f.read(n).decode("utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{path}: header __metadata__ must map names to strings")
    return {name: _entry(path, name, e, size - 8 - n) for name, e in header.items()}, meta


def _entry(path: Path, name: str, e: object, room: int) -> torch.Tensor:
    """One header entry as a meta tensor, once its dtype, shape and byte range agree with each other and the file."""
    ok = isinstance(e, dict) and e.get("dtype") in DTYPES and isinstance(e.get("shape"), list) \
        and all(type(d) is int and d >= 0 for d in e["shape"]) and isinstance(e.get("data_offsets"), list) \
        and len(e["data_offsets"]) == 2 and all(type(o) is int and o >= 0 for o in e["data_offsets"])
    if not ok:
        raise CheckpointError(f"{path}: header entry {name!r} is not a tensor of a known dtype "
                              f"({', '.join(DTYPES)}), a shape and two data offsets")
    dtype = DTYPES[e["dtype"]]
    begin, end = e["data_offsets"]
    nbytes = math.prod(e["shape"]) * dtype.itemsize
    if end - begin != nbytes or end > room:
        raise CheckpointError(f"{path}: tensor {name} {e['dtype']} {tuple(e['shape'])} needs {nbytes} bytes at "
                              f"{begin}..{end}, but the file holds {room} bytes of tensors")
    return torch.empty(e["shape"], dtype=dtype, device="meta")


def read_tensors(path: Path, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """The named tensors (checked by read_header first), copied out of a memory map of the file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: f.get_tensor(name) for name in names}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint ({str(e).splitlines()[0]})") from None


def read_tensors_sha256(path: Path, names: Iterable[str], tries: int = 3) -> tuple[dict[str, torch.Tensor], str]:
    """read_tensors, and the SHA-256 of the version of the file they came from: a training process may replace
    the file (a rename) at any time, so a digest taken by a second open could be of other weights. The file is
    held open while it is hashed and mapped; the map is of the held version when the path still names it after
    (a replaced version never comes back). Replaced in between, the file is read again."""
    names = list(names)
    for _ in range(tries):
        with open_regular(path, error=CheckpointError) as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
            tensors = read_tensors(path, names)
            try:
                now, held = os.stat(path), os.fstat(f.fileno())
            except FileNotFoundError:  # removed meanwhile: the next open says so
                continue
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                return tensors, sha256
    raise CheckpointError(f"{path}: replaced {tries} times while it was being read; read it again later")
