"""Which rows each training step sees.

ResidentBatches keeps the training split on the device as one stored tensor and hands out index
tensors; StreamedBatches reads an .npy file in chunks and hands out the rows themselves. Both yield
(storage, idx) pairs for `data.rows(storage, idx, scale)`; idx None means every row of storage.

Data order comes from generators derived from (seed, epoch, part), not from the global RNG, so
it needs no checkpointing and is the same in every process of a distributed run.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from ..data.images import take_rows
from ..data.npy import NpyRows
from ..errors import VaelabError

Batch = tuple[torch.Tensor, torch.Tensor | None]


def order_generator(seed: int, epoch: int, part: int, device: torch.device) -> torch.Generator:
    """A generator for the data order of one part (shard or chunk list) in one epoch."""
    state = np.random.SeedSequence([seed, epoch, part]).generate_state(2, np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def check_shards(n: int, batch_size: int, shards: int) -> int:
    """Steps per epoch of n rows in batches of batch_size drawn from `shards` shards; raises if there are none."""
    if shards > 1 and batch_size % shards:
        raise VaelabError(f"batch_size {batch_size} must divide evenly into {shards} shards")
    # the smallest shard (n // shards rows) bounds the steps when batches are drawn from several
    steps = math.ceil(n / batch_size) if shards <= 1 else (n // shards) // (batch_size // shards)
    if steps == 0:
        raise VaelabError(f"the training split ({n} rows) is too small for batch_size {batch_size}"
                          f"{f' in {shards} shards' if shards > 1 else ''}")
    return steps


class ResidentBatches:
    """The training split, resident on the device, split into `shards` interleaved shards.

    Row i belongs to shard i % shards. A step takes batch_size / shards rows from each shard, in an
    order drawn per shard and epoch, shard-major. A process holds only the shards in `held`, so a
    distributed run keeps 1/shards of the data per process and still trains on exactly the batches
    of a one-process run with the same number of shards. With one shard this is the usual shuffled
    batches of batch_size, the last one ragged; with several, an incomplete last step is dropped.
    Dense rows and sparse CSR word counts (a corpus) are sharded alike: a process keeps a CSR tensor of
    its shards' documents only.
    """

    def __init__(self, stored: torch.Tensor, batch_size: int, *, seed: int, device: torch.device,
                 shards: int = 1, held: list[int] | None = None):
        n = len(stored)
        self.steps = check_shards(n, batch_size, shards)
        self.shards, self.seed, self.device = shards, seed, device
        self.held = list(range(shards)) if held is None else list(held)
        self.per_shard = batch_size // shards  # rows each shard gives a step
        self.sizes = [len(range(s, n, shards)) for s in range(shards)]
        self.offsets = np.cumsum([0] + [self.sizes[s] for s in self.held])[:-1].tolist()
        if shards > 1:  # the held shards' rows, shard-major: dense rows or a CSR row slice (word counts)
            stored = take_rows(stored, torch.cat([torch.arange(s, n, shards) for s in self.held]))
        self.storage = stored.to(device)  # (N_held, D)

    @property
    def step_rows(self) -> int:
        """Rows a full step trains on, over all processes."""
        return self.per_shard * self.shards

    def rows_per_epoch(self) -> int:
        """Rows one epoch trains on, over all processes."""
        return sum(self.sizes) if self.shards == 1 else self.steps * self.step_rows

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """(storage, idx) for every step of this epoch; idx is (B_held,) on the device."""
        perms = [torch.randperm(self.sizes[s], device=self.device,
                                generator=order_generator(self.seed, epoch, s, self.device)) + off
                 for s, off in zip(self.held, self.offsets)]
        b = self.per_shard
        for j in range(self.steps):
            if len(perms) == 1:
                yield self.storage, perms[0][j * b:(j + 1) * b]
            else:
                yield self.storage, torch.cat([p[j * b:(j + 1) * b] for p in perms])


class StreamedBatches:
    """Training rows read from an .npy file in chunks, so memory stays flat however large the file.

    With one shard, each epoch visits the file's chunks (chunk_rows file rows each) in a fresh random
    order and shuffles rows within each chunk, the usual compromise for data that does not fit in memory:
    a batch mixes rows of one or two chunks rather than of the whole file; the last batch is ragged.

    With `shards = S > 1` the training rows are cut into S contiguous ranges, shard s holding training rows
    [s*n // S, (s+1)*n // S) (sizes equal to one row, so the smallest, n // S, bounds the steps and an epoch
    drops fewer than batch_size / S rows per shard). Each shard streams its own range like one unsharded
    file: its chunks (chunk_rows file rows from the range's first row) in an order drawn per shard and
    epoch, rows shuffled within each chunk. A step takes batch_size / S rows from each shard, shard-major,
    so a batch mixes S regions of the file, one or two chunks of each; an incomplete last step is dropped.
    A process holds only the shards in `held` and reads only their ranges, sequentially, one chunk at a
    time: N processes with S / N shards each train on exactly the batches one process with S shards trains
    on (ResidentBatches' guarantee), and none reads another's rows. Contiguous ranges rather than
    interleaved rows or chunks: reading stays sequential in whole chunks, and the shards' sizes stay equal
    however the file divides into chunks (validation rows, taken from the file's start, are left out first).
    """

    def __init__(self, source: NpyRows, batch_size: int, *, seed: int, device: torch.device,
                 chunk_rows: int = 16384, shards: int = 1, held: list[int] | None = None):
        self.source, self.batch_size, self.seed, self.device = source, batch_size, seed, device
        self.shards = max(shards, 1)
        self.held = list(range(self.shards)) if held is None else list(held)
        n = len(source)
        if self.shards == 1:
            if n == 0:
                raise VaelabError("the training split is empty")
            self.chunk_rows = max(chunk_rows, batch_size)
            self.steps = math.ceil(n / batch_size)
            self.ranges = [[(c * self.chunk_rows, (c + 1) * self.chunk_rows)
                            for c in range(math.ceil(source.file_rows / self.chunk_rows))]]
        else:
            self.steps = check_shards(n, batch_size, self.shards)
            self.chunk_rows = max(chunk_rows, batch_size // self.shards)
            bounds = [source.file_row_of(s * n // self.shards) for s in range(self.shards)] + [source.file_rows]
            self.ranges = [[(a, min(a + self.chunk_rows, stop)) for a in range(start, stop, self.chunk_rows)]
                           for start, stop in zip(bounds[:-1], bounds[1:])]  # per shard: (start, stop) file rows
        self.per_shard = batch_size // self.shards
        self.step_rows = batch_size

    def rows_per_epoch(self) -> int:
        """Rows one epoch trains on, over all processes."""
        return len(self.source) if self.shards == 1 else self.steps * self.batch_size

    def _pieces(self, chunks: list[tuple[int, int]], g: torch.Generator, size: int) -> Iterator[torch.Tensor]:
        """The training rows of the file rows in chunks, chunk order and rows within a chunk drawn from g,
        in pieces of `size` rows (the last one ragged): (size, D) uint8 on the device."""
        pool = torch.empty((0, self.source.dim), dtype=torch.uint8, device=self.device)
        for c in torch.randperm(len(chunks), generator=g).tolist():
            block = torch.from_numpy(self.source.read(*chunks[c])).to(self.device)  # (<= chunk_rows, D)
            block = block[torch.randperm(len(block), generator=g).to(self.device)]
            pool = torch.cat([pool, block]) if len(pool) else block
            while len(pool) >= size:
                yield pool[:size]
                pool = pool[size:]
        if len(pool):
            yield pool

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """(rows, None) for every step of this epoch; rows (B_held, D) uint8 on the device."""
        cpu = torch.device("cpu")
        if self.shards == 1:
            for piece in self._pieces(self.ranges[0], order_generator(self.seed, epoch, 0, cpu), self.batch_size):
                yield piece, None
            return
        streams = [self._pieces(self.ranges[s], order_generator(self.seed, epoch, s, cpu), self.per_shard)
                   for s in self.held]
        for _ in range(self.steps):
            parts = [next(stream) for stream in streams]
            yield (parts[0] if len(parts) == 1 else torch.cat(parts)), None
