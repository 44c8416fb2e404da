"""Shared test helper: a command that must fail the way bad input fails."""

from vaelab.cli import run as cli


def expect_error(args: list[str], capsys) -> str:
    """Run the CLI; assert exit code 2 and exactly one `vaelab: error:` line on stderr; return it."""
    code = cli(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("vaelab: error:"), err
    return err


def safetensors_content(path) -> tuple[dict, bytes]:
    """A safetensors file as (header, tensor bytes): equal for equal files, whatever order the
    writer's hash map put the header's keys in (it differs from one process to the next)."""
    import json
    import struct
    from pathlib import Path

    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]
