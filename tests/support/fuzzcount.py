"""The number of generated fuzz cases this session (printed by conftest's terminal summary)."""

CASES = {"n": 0}


def count() -> None:
    """One more generated case."""
    CASES["n"] += 1
