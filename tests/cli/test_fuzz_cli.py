"""Fuzzing every numeric flag of every command with 0, -1, 1e9, nan, inf, 1e300 and "abc" (issue 27, item 14).

The cases come from the parsers themselves (cli/main.py's build_parser): every flag typed Number (cli/numbers.py),
int or float, and every train/sweep flag that sets a numeric config key, so a new flag is fuzzed without a
line here. Integer flags also get 1e9 and 1e300 spelled as integers, which their parsers take. Each case runs
one small command (BASES) with the flag appended, in-process, and must end in:
  - a value outside the flag's range (its Number, or the config's check): exit 2 with an error line that
    names the flag or its config key, before anything is written (no silent accepts);
  - a value inside it: exit 0, or exit 2 with an error line (too large for this machine's memory, no such
    epoch, or a run that diverged once started: --lr 1e9), leaving every file that was there as it was; or
    still running after DEADLINE seconds (a long job, e.g. 1e9 epochs: interrupted like ^C, it must stop
    cleanly with exit 130);
  - never an uncaught exception or a traceback on stderr.
The process's address space is capped while the cases run (CAP bytes over its size), so a case that
tried to allocate what it should have refused fails with a MemoryError instead of paging in gigabytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import resource
import shutil
import signal
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from corpora import two_topic_lines, write_tsv
from fuzzcount import count
from fuzzing import listing

from vaelab.cli import train as cli_train
from vaelab.cli.main import build_parser
from vaelab.cli.main import run as cli
from vaelab.cli.numbers import Number
from vaelab.config import schema as cfg
from vaelab.errors import ConfigError

VALUES = ["0", "-1", "1e9", "nan", "inf", "1e300", "abc"]
INTEGER_SPELLINGS = ["1000000000", "1" + "0" * 300]  # 1e9 and 1e300 as an int flag's parser reads them
DEADLINE = 10.0  # seconds a valid value may run before it is interrupted (a refusal takes milliseconds)
CAP = 4 << 30  # bytes of address space the cases may add to this process

TINY = ["--hidden", "16", "--latent-dim", "2"]
BASE_CONFIG = {"data": "digits", "epochs": 1, "hidden": "16", "latent_dim": "2"}  # what the train/sweep bases set
BASES = {  # one small command per command that has numeric flags; {run}: a trained run, copied for each case
    "train": ["train", "--data", "digits", "--epochs", "1", *TINY, "--no-report", "--out", "{out}"],
    "sweep": ["sweep", "--data", "digits", "--epochs", "1", *TINY, "--seeds", "2", "--no-report", "--out", "{out}"],
    "evaluate": ["evaluate", "{run}", "--k", "2"],
    "plot": ["plot", "{run}", "--kind", "manifold", "--epoch", "1"],
    "topics": ["topics", "{docs}"],
    "bench": ["bench", "--what", "eval", "--run", "{run}", "--k", "2", "--ref-points", "2"],
    "baseline": ["baseline", "--model", "mixture", "--data", "digits", "--components", "2", "--max-iter", "2",
                 "--out", "{out}"],
    "amortization-gap": ["amortization-gap", "{run}", "--steps", "2", "--points", "2", "--samples", "2", "--k", "2"],
    "explore": ["explore", "{run}", "--points", "50"],
}
_NUMERIC_KEYS = {f.name for f in dataclasses.fields(cfg.Config)
                 if type(f.default) in (int, float, tuple)}  # hidden (200,), latent_dim 20, ...


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _config_key(command: str, action: argparse.Action) -> str | None:
    """The numeric config key a train/sweep flag sets, or None."""
    key = action.dest if command in cli_train.COMMANDS and action.dest in cli_train.OVERRIDES else None
    return key if key in _NUMERIC_KEYS else None


def numeric_flags() -> list[tuple[str, str]]:
    """(command, flag) for every numeric flag of every command."""
    out = []
    for command, p in _commands().items():
        for a in p._actions:
            if a.option_strings and (isinstance(a.type, Number) or a.type in (int, float) or _config_key(command, a)):
                out.append((command, a.option_strings[-1]))
    return out


def _action(command: str, flag: str) -> argparse.Action:
    return next(a for a in _commands()[command]._actions if flag in a.option_strings)


def is_valid(command: str, flag: str, text: str) -> bool:
    """Whether the value is in the flag's declared range: its Number, or the config's check of its key."""
    a = _action(command, flag)
    if isinstance(a.type, Number):
        try:
            a.type(text)
            return True
        except argparse.ArgumentTypeError:
            return False
    try:
        value = a.type(text) if a.type else text
    except ValueError:
        return False
    try:
        cfg.from_dict({**BASE_CONFIG, _config_key(command, a): value})
        return True
    except ConfigError:
        return False


def values_for(command: str, flag: str) -> list[str]:
    a = _action(command, flag)
    ints = a.type is int or (isinstance(a.type, Number) and a.type.kind is int) or _config_key(command, a) in (
        "hidden", "latent_dim")
    return VALUES + (INTEGER_SPELLINGS if ints else [])


def test_every_numeric_flag_declares_its_range():
    """A new flag typed plain int or float fails here until it says which values it takes (or sets a config key)."""
    loose = [(c, f) for c, f in numeric_flags() if not isinstance(_action(c, f).type, Number)
             and not _config_key(c, _action(c, f))]
    assert loose == []
    assert len(numeric_flags()) >= 55 and set(BASES) == {c for c, _ in numeric_flags()}


@contextmanager
def interrupt_after(seconds: float):
    """A KeyboardInterrupt (as ^C) after `seconds`; cancelled when the block ends."""
    def stop(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


@pytest.fixture(scope="module")
def capped():
    """This process's address space capped at its size + CAP while the module's cases run."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (min(_vm_size() + CAP, hard if hard > 0 else 2**62), hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A digits VAE with epoch 1 kept (evaluate, plot, gap, explore, bench) and an NVDM (topics)."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    made = {"run": root / "run", "docs": root / "docs"}
    assert cli(["-q", "train", "--data", "digits", "--epochs", "1", *TINY, "--save-every", "1", "--no-report",
                "--out", str(made["run"])]) == 0
    corpus = write_tsv(root / "corpus", two_topic_lines(40))
    assert cli(["-q", "train", "--data", f"corpus:{corpus}", "--model", "nvdm", *TINY, "--epochs", "1",
                "--no-report", "--out", str(made["docs"])]) == 0
    return made


def run_case(argv: list[str]) -> tuple[object, str, bool]:
    """(exit code or the uncaught exception, stderr, whether the deadline interrupted it)."""
    err, start = io.StringIO(), time.monotonic()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        try:
            with interrupt_after(DEADLINE):
                code = cli(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code
        except KeyboardInterrupt:  # the deadline, outside the CLI's own handler
            code = 130
        except BaseException as e:  # noqa: BLE001 (any escape is what the test is looking for)
            code = e
    return code, err.getvalue(), time.monotonic() - start >= DEADLINE


def _prepared(command: str, case_dir: Path, made: dict) -> list[str]:
    case_dir.mkdir()
    args = {"out": str(case_dir / "out")}
    for name, path in made.items():
        if "{" + name + "}" in BASES[command]:
            args[name] = str(case_dir / name)
            shutil.copytree(path, case_dir / name)
    return ["-q", *(a.format(**args) for a in BASES[command])]


@pytest.mark.parametrize("command", sorted(BASES))
def test_each_base_command_succeeds(command, runs, tmp_path, monkeypatch):
    """The commands the cases start from work: a refusal in a case is the value's doing."""
    monkeypatch.chdir(tmp_path)
    code, err, late = run_case(_prepared(command, tmp_path / "case", runs))
    assert code == 0 and not late, err


@pytest.mark.parametrize("command, flag", numeric_flags())
def test_numeric_flag(command, flag, runs, capped, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = _action(command, flag)
    names = {flag, a.dest, _config_key(command, a)} - {None}
    for i, text in enumerate(values_for(command, flag)):
        count()
        base = _prepared(command, tmp_path / str(i), runs)
        before = listing(tmp_path / str(i))
        code, err, late = run_case([*base, f"{flag}={text}"])
        where = f"{command} {flag}={text[:20]}: exit {code!r}\n{err[-2000:]}"
        assert isinstance(code, int) and "Traceback" not in err, where
        errors = [line for line in err.strip().splitlines() if "error:" in line]  # the error, then at most a hint
        if code == 2:
            assert len(errors) == 1 and len(err.strip().splitlines()) <= 2, where
        if not is_valid(command, flag, text):
            assert code == 2 and any(n in errors[0] for n in names), f"{where}: accepted (or not named)"
            assert listing(tmp_path / str(i)) == before, f"{where}: wrote or removed files while refusing"
        else:
            assert code in (0, 2) or (code == 130 and late), where
            if code == 2:  # refused, or failed once started (diverged): nothing that was there is lost or changed
                assert set(before) <= set(listing(tmp_path / str(i))), f"{where}: removed or changed files"
        shutil.rmtree(tmp_path / str(i))
