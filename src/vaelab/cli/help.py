"""How the command line reads and explains itself: no prefix matching, "did you mean", every default shown.

Torch-free, like everything `vaelab --help` imports.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Collection, NoReturn

from ..config import schema as cfg
from ..errors import did_you_mean
from ..terminal import printable


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (and its subparsers) that never expands prefixes and suggests the closest choice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--epoch 3` is an error, not `--epochs 3`
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Two lines and exit code 2: what was wrong, and where the flags are listed (argparse's own error
        prints the usage first, which for train is 20 lines of flags above the one line that matters)."""
        self.exit(2, f"{self.prog}: error: {printable(message)}\nrun `{self.prog} --help` for the usage\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{did_you_mean(value, action.choices)} (choose from {choices})")


class _Step(argparse.Action):
    """-v adds 1 to the verbosity, -q takes 1 away; repeatable."""

    def __init__(self, option_strings, dest, step: int = 1, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)
        self.step = step

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, (getattr(namespace, self.dest, 0) or 0) + self.step)


def add_verbosity(p: argparse.ArgumentParser, default: Any) -> None:
    """-q/--quiet and -v/--verbose into args.verbosity (0 by default; the command's own flags win)."""
    p.add_argument("-q", "--quiet", dest="verbosity", action=_Step, step=-1, default=default,
                   help="less output: no progress bars (default: neither -q nor -v)")
    p.add_argument("-v", "--verbose", dest="verbosity", action=_Step, step=1, default=default,
                   help="more output; repeat for more (default: neither -q nor -v)")


def _default_text(action: argparse.Action, config_keys: Collection[str]) -> str | None:
    """What a flag does when it is not given, or None when its help already says."""
    if action.help in (None, argparse.SUPPRESS) and not action.option_strings:
        return None
    if action.help == argparse.SUPPRESS or re.search(r"(\(|; )default[ :;]", action.help or ""):
        return None
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.required:
        return None
    if action.dest in config_keys and action.default is None:  # set by the config: show the config's own
        value = getattr(cfg.Config(), action.dest)
        value = ",".join(map(str, value)) if isinstance(value, tuple) else value
        return f"{value}, or the --config file's" if value is not None else "none, or the --config file's"
    if isinstance(action, argparse._StoreTrueAction):
        return "off"
    if action.default is None or action.default == []:
        return "none"
    return str(action.default)


def show_defaults(p: argparse.ArgumentParser, config_keys: Collection[str] = ()) -> None:
    """Append "(default: ...)" to every optional flag's help that does not state it (idempotent)."""
    for action in p._actions:
        if not action.option_strings:
            continue
        text = _default_text(action, config_keys)
        if action.required and "(required)" not in (action.help or ""):
            action.help = f"{action.help or ''} (required)".strip()
        elif text is not None:
            action.help = f"{action.help or ''} (default: {text.replace('%', '%%')})".strip()
