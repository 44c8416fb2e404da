"""User-facing errors: the CLI prints one line and exits with code 2."""


class VaelabError(Exception):
    """A problem with the user's input (data, config, run folder, checkpoint)."""


class DataError(VaelabError):
    """A dataset could not be found, read or validated."""


class ConfigError(VaelabError):
    """A config file or flag is invalid."""


class CheckpointError(VaelabError):
    """A checkpoint is missing, corrupt or does not fit the model."""
