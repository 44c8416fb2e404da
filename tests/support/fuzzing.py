"""Shared pieces of the fuzz tests: the one allowed failure, and a folder that must stay as it was."""

from pathlib import Path

from fuzzcount import count

from vaelab.errors import VaelabError


def outcome(call, *args, **kw):
    """call(...)'s result, or None after a VaelabError with a one-line message; anything else fails the test."""
    count()
    try:
        return call(*args, **kw)
    except VaelabError as e:
        msg = str(e)
        assert msg and "\n" not in msg, repr(msg)
        return None


def listing(folder: Path) -> list[tuple[str, int]]:
    """Every path under folder with its size, to check that a failed load wrote nothing."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size if p.is_file() else -1) for p in folder.rglob("*"))
