"""User-facing errors: each names the file, field or flag at fault and what was expected.

Entry points catch `MipNerfError` and print its message as one line (no traceback).
"""


class MipNerfError(Exception):
    """Base class of every error that is the user's input, not a bug."""


class ConfigError(MipNerfError):
    """A config field is unknown, of the wrong type, or has an impossible value."""


class DatasetError(MipNerfError):
    """A dataset file or folder is missing, unreadable or malformed."""


class CheckpointError(MipNerfError):
    """No checkpoint to restore, or a checkpoint that does not fit the model."""
