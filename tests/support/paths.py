"""Where things are, for tests in any folder: the checkout's root (src/ and benchmarks/ under it)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
