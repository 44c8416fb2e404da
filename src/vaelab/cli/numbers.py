"""Numbers on the command line: each numeric flag declares its range, and the value is checked as it is parsed.

argparse's int and float accept "-5", "nan", "inf" and "1e300" as readily as "3", and the command then fails
deep inside (a math domain error) or silently does something else (--k 0 meant "the default"). A flag typed
Number(int, low=1) refuses such values with one line naming it:
    vaelab evaluate: error: argument --k: must be an integer >= 1, got '-5'
and its range stays readable on the parser: the CLI fuzz test generates its cases from it.
Flags that set config keys (train, sweep) stay plain int/float: the config checks their ranges (config/schema.py).
Torch-free, like everything `vaelab --help` imports.
"""

from __future__ import annotations

import argparse
import math

INT64_MAX = 2**63 - 1  # torch, NumPy and safetensors count in int64: a larger count means nothing to them
FLOAT32_MAX = 3.4028234663852886e38  # torch.finfo(torch.float32).max: a learning rate past it overflows


class Number:
    """An argparse type: `count` finite numbers of `kind` (int or float), comma-separated, each in [low, high]
    (or (low, high] with low_open)."""

    def __init__(self, kind: type, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, count: int = 1):
        self.kind, self.low, self.low_open, self.count = kind, low, low_open, count
        self.high = INT64_MAX if high is None and kind is int else high
        self.__name__ = kind.__name__  # what argparse calls the type in its own messages

    def describe(self) -> str:
        """'an integer >= 1', 'a number > 0', 'an integer in [0, 4294967295]', '4 numbers' ..."""
        what = ("an integer" if self.kind is int else "a finite number") if self.count == 1 else \
            f"{self.count} comma-separated {'integers' if self.kind is int else 'finite numbers'}"
        def text(v: float) -> str:
            return str(v) if self.kind is int else f"{v:g}"
        if self.low is not None and self.high is not None and self.high != INT64_MAX:
            return f"{what} in {'(' if self.low_open else '['}{text(self.low)}, {text(self.high)}]"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {text(self.low)}"
        return what

    def _one(self, text: str) -> int | float:
        text = text.strip()
        if self.kind is int:
            if not text.lstrip("+-").isdigit():  # "1e9" and "2.0" are not integers; int() would take "1_000"
                raise ValueError(text)
            return int(text)
        v = float(text)
        if not math.isfinite(v):
            raise ValueError(text)
        return v

    def accepts(self, value: int | float | tuple) -> bool:
        """Whether a parsed value lies in the range."""
        for v in value if isinstance(value, tuple) else (value,):
            if self.low is not None and (v <= self.low if self.low_open else v < self.low):
                return False
            if self.high is not None and v > self.high:
                return False
        return True

    def __call__(self, text: str) -> int | float | tuple:
        try:
            parts = [self._one(t) for t in text.split(",")] if self.count > 1 else [self._one(text)]
        except (ValueError, OverflowError):
            parts = []
        value = tuple(parts) if self.count > 1 else (parts[0] if parts else None)
        if len(parts) != self.count or not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value

    def __repr__(self) -> str:
        return f"Number({self.describe()})"


COUNT = Number(int, 1)  # samples, points, steps, epochs: at least one
INDEX = Number(int, 0)  # an epoch number: 0 is the weights before training
SEED = Number(int, 0, 2**32 - 1)  # NumPy's seeds are 32-bit
