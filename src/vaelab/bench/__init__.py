"""Timings against reference implementations (the benchmarks' library half)."""
