"""User-facing errors: the CLI prints one line and exits with code 2."""


class VaelabError(Exception):
    """A problem with the user's input (data, config, run folder, checkpoint)."""


class DataError(VaelabError):
    """A dataset could not be found, read or validated."""


class ConfigError(VaelabError):
    """A config file or flag is invalid."""


class FolderInUse(VaelabError):
    """Another process holds the folder's lock (it trains there now)."""


class AlreadyThere(VaelabError):
    """A folder already holds what a command would write there (a run, a sweep, a baseline); the message names
    the keywords that continue or replace it, the CLI names its flags instead."""

    def __init__(self, message: str, path: object, what: str) -> None:
        super().__init__(message)
        self.path, self.what = path, what


class CheckpointError(VaelabError):
    """A checkpoint is missing, corrupt or does not fit the model."""


def need_count(name: str, value, low: int = 1) -> int:
    """value as an int when it is a whole number >= low (never a bool); else a VaelabError naming the keyword."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise VaelabError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest of choices (difflib), or '' when none is close."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(what: str, word: str, choices) -> str:
    """The one-line message for an unknown name: "unknown model 'vea' (did you mean 'vae'?); choose from ..."."""
    return f"unknown {what} {word!r}{did_you_mean(word, choices)}; choose from {', '.join(map(str, choices))}"
