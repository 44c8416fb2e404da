"""Command line: parse -> config -> library call. User errors print one line and exit with code 2.

A bare `vaelab` prints the help on stdout and exits 0; `-q`/`-v` go before or after the command
(args.verbosity: -1 per -q, +1 per -v); cli/help.py makes every parser refuse prefixes, suggest the
closest choice and show every default.

Each command module (cli_train, cli_look, commands, cli_explore) adds its subparsers and maps names to handlers.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings

from .. import __version__  # torch-free: the library is imported where it runs
from ..errors import AlreadyThere, VaelabError
from ..logs import configure_logging
from ..terminal import first_process, printable, say
from . import analysis as commands
from . import explore as cli_explore
from . import export as cli_export
from . import look as cli_look
from . import train as cli_train
from .help import Parser, add_verbosity, show_defaults

COMMAND_MODULES = (cli_train, cli_look, commands, cli_explore, cli_export)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; `-q`/`-v` are accepted before and after the command."""
    parser = Parser(prog="vaelab", description="Variational autoencoders: train, evaluate, look. "
                    "`vaelab COMMAND --help` shows a command's flags.")
    parser.add_argument("--version", action="version", version=f"vaelab {__version__}")
    add_verbosity(parser, default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    for p in sub.choices.values():
        add_verbosity(p, default=argparse.SUPPRESS)  # after the command: overrides nothing unless given
        show_defaults(p, cli_train.OVERRIDES if p.prog.split()[-1] in cli_train.COMMANDS else ())
    show_defaults(parser)
    return parser


def _handler(name: str):
    for module in COMMAND_MODULES:
        if name in module.COMMANDS:
            return module.COMMANDS[name]
    raise VaelabError(f"unknown command {name!r}")


def _glue_negative_values(argv: list[str]) -> list[str]:
    """`--range -10,5,-5,5` -> `--range=-10,5,-5,5`: argparse would take the value for a flag."""
    out: list[str] = []
    for i, a in enumerate(argv):
        if i and argv[i - 1] == "--range" and a.startswith("-") and a[1:2].isdigit():
            out[-1] = f"--range={a}"
        else:
            out.append(a)
    return out


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (tests)
        pass


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings' own format, on stderr, with control characters from the message (a path, a word) escaped."""
    say(warnings.formatwarning(message, category, filename, lineno, line), file=file or sys.stderr, end="")


def _continue_or_replace(e: AlreadyThere) -> str:
    """The flags that continue (a run) or replace what a folder holds."""
    if e.what == "run":
        return f"`vaelab train --resume {shlex.quote(str(e.path))}` continues it; --overwrite replaces it"
    if e.what == "comparison":
        return "--overwrite replaces it, or --out writes this one elsewhere"
    return "--overwrite replaces it"


def _error(line: str) -> None:
    """The one error line; under torchrun (where every process finds the same fault) the first process of each node
    prints it: one line on one node (docs/DISTRIBUTED.md)."""
    if first_process(node=True):
        say(f"vaelab: error: {line}", file=sys.stderr)


def run(argv: list[str] | None = None) -> int:
    """Entry point returning an exit code (0 ok, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(_glue_negative_values(sys.argv[1:] if argv is None else list(argv)))
    if args.command is None:  # a bare `vaelab`: the help, on stdout, and success
        parser.print_help()
        return 0
    args.quiet = args.verbosity < 0  # the handlers' switch for progress bars
    warnings.simplefilter("default")
    warnings.showwarning = _show_warning
    configure_logging(args.verbosity)  # -q: warnings only; -v: debug
    try:
        _handler(args.command)(args)
    except AlreadyThere as e:  # the library names its keywords (resume=, overwrite=); here the flags
        _error(f"{printable(e.path)} already holds a {e.what}; {_continue_or_replace(e)}")
        return 2
    except VaelabError as e:
        _error(printable(e))
        return 2
    except BrokenPipeError:  # `vaelab topics RUN | head`: the reader left; stop quietly
        _silence_stdout()
        return 1
    except OSError as e:  # writing the run failed: no space, read-only, --out on or under a file
        where = f"{e.filename}: " if e.filename else ""
        say(f"vaelab: error: {printable(where)}{printable(e.strerror or e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say("vaelab: interrupted; `vaelab train --resume RUN` continues from the last finished epoch", file=sys.stderr)
        return 130
    return 0


def main() -> None:
    code = run()
    try:
        sys.stdout.flush()  # output to a pipe is buffered until here
    except BrokenPipeError:
        _silence_stdout()
        code = 1
    sys.exit(code)
