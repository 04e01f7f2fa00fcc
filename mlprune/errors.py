"""Error types that the CLI turns into a one-line message and a non-zero exit."""


class MlpruneError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""


class DataError(MlpruneError):
    """A dataset file is missing, malformed or inconsistent; the message names the file."""


class ConfigError(MlpruneError):
    """A params.yaml field is missing, unknown or has a bad value; the message names the field."""


class CheckpointError(MlpruneError):
    """A checkpoint is truncated, corrupt or does not match its architecture spec."""
