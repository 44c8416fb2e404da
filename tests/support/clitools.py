"""Shared test helpers: a command that must fail the way bad input fails, tests kept off the network."""

from vaelab.cli.main import run as cli
from vaelab.data import idx


def no_downloads(monkeypatch, tmp_path) -> None:
    """No download (urlopen raises), a private cache under tmp_path, and no $VAELAB_DATA."""
    def no_network(*args, **kwargs):
        raise AssertionError("tests must never download")

    monkeypatch.setattr(idx.urllib.request, "urlopen", no_network)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VAELAB_DATA", raising=False)


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


def refused_flag(args: list[str], capsys) -> str:
    """Run the CLI on a value a flag's parser refuses (cli.numbers.Number): exit code 2, whether argparse exits or
    the CLI returns it, and no traceback; returns the error line."""
    try:
        code = cli(args)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if "error:" in line]  # the error line, then at most a hint
    assert code == 2 and "Traceback" not in err and len(errors) == 1 and len(err.splitlines()) <= 2, err
    return errors[0]


def snapshot(path) -> dict:
    """Every file under path and its bytes, to show that a refused command wrote nothing."""
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
