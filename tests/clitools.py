"""Shared test helper: a command that must fail the way bad input fails."""

from vaelab.cli import run as cli


def expect_error(args: list[str], capsys) -> str:
    """Run the CLI; assert exit code 2 and exactly one `vaelab: error:` line on stderr; return it."""
    code = cli(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("vaelab: error:"), err
    return err
