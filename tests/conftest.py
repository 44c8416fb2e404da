"""Session-wide test hooks: the fuzz suite's case count in the terminal summary."""

from fuzzcount import CASES


def pytest_terminal_summary(terminalreporter):
    if CASES["n"]:
        terminalreporter.write_line(f"fuzz: {CASES['n']} generated cases")
