"""Headless Chromium (Debian's package) driven by Playwright, for the page tests; a test module importing this is
skipped where either is missing (.ci/run installs both when it can)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = os.environ.get("VAELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium executable (apt-get install chromium)", allow_module_level=True)


def launched() -> Iterator:
    """One browser for a module's tests (a fixture's body: `yield from launched()`); skips where it cannot start."""
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Exception as e:  # a chromium that cannot start here (no sandbox support, missing libraries)
            pytest.skip(f"chromium does not start: {str(e).splitlines()[0]}")
        yield b
        b.close()
