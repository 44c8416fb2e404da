"""The training step as a CUDA graph: one launch per step instead of a few hundred.

A small VAE's step on a GPU is made of hundreds of tiny kernels, so its time goes to launching
them, not to arithmetic. After a few ordinary warm-up steps on a side stream (they are real
training steps: they set up the optimizer state and the allocator), the whole step (gather,
binarization, forward, backward, Adam) is captured once with a static index buffer and then
replayed for every full batch. Anything the graph cannot replay runs eagerly instead: a ragged
last batch, a different storage tensor, or a KL weight other than 1 during warm-up. If capture
itself fails, the run warns once and stays eager.

The CUDA calls sit behind two small functions (side_stream, capture) so that the control flow
above is tested on the CPU with stand-ins; the capture itself needs a GPU.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

StepFn = Callable[[torch.Tensor, torch.Tensor | None, float], torch.Tensor]
WARMUP_STEPS = 3


def usable(device: torch.device, enabled: bool, distributed: bool) -> bool:
    """Graphs are used on CUDA when enabled, and not under DistributedDataParallel."""
    return enabled and device.type == "cuda" and not distributed


@contextmanager
def cuda_side_stream() -> Iterator[None]:
    """Run the block on a fresh side stream, ordered after and before the current stream's work."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream().wait_stream(side)


def cuda_capture(fn: Callable[[], torch.Tensor]) -> tuple[Callable[[], None], torch.Tensor]:
    """Record fn as a CUDA graph (nothing runs yet); returns replay and fn's static output."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph.replay, out


class GraphedStep:
    """Wraps an eager step function (storage, idx, beta) -> loss; replays it as a graph when it can."""

    def __init__(self, step: StepFn, before_capture: Callable[[], None], *,
                 side_stream=cuda_side_stream, capture=cuda_capture):
        self.step, self.before_capture = step, before_capture
        self.side_stream, self.capture = side_stream, capture
        self.replay: Callable[[], None] | None = None
        self.storage: torch.Tensor | None = None
        self.idx: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self.warm = 0
        self.failed = False

    def _fits(self, storage: torch.Tensor, idx: torch.Tensor | None, beta: float) -> bool:
        if self.failed or idx is None or beta != 1.0:
            return False
        if self.storage is None:
            return True
        return storage is self.storage and idx.shape == self.idx.shape

    def __call__(self, storage: torch.Tensor, idx: torch.Tensor | None, beta: float) -> torch.Tensor:
        if not self._fits(storage, idx, beta):
            return self.step(storage, idx, beta)
        if self.replay is None:
            if self.warm < WARMUP_STEPS:  # a real step, on a side stream as capture requires
                self.warm += 1
                with self.side_stream():
                    return self.step(storage, idx, beta)
            self._capture(storage, idx)
            if self.replay is None:
                return self.step(storage, idx, beta)
        self.idx.copy_(idx)
        self.replay()
        return self.loss

    def _capture(self, storage: torch.Tensor, idx: torch.Tensor) -> None:
        self.storage, self.idx = storage, idx.clone()
        self.before_capture()
        try:
            self.replay, self.loss = self.capture(lambda: self.step(storage, self.idx, 1.0))
        except RuntimeError as e:
            self.failed, self.replay = True, None
            warnings.warn(f"CUDA graph capture failed, training eagerly instead ({str(e).splitlines()[0]})",
                          stacklevel=2)
            self.before_capture()
