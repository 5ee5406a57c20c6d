"""User-facing errors: each names the file, field or flag at fault and what was expected.

Entry points catch `MipNerfError`, print its message as one line (no traceback) and exit with
its `exit_code`: 1 for bad input or an unrecoverable fault, 128 + the signal for a stop asked for.
"""


class MipNerfError(Exception):
    """Base class of every error that is the user's input or the machine's fault, not a bug."""

    exit_code = 1
    prefix = "error: "


class ConfigError(MipNerfError):
    """A config field is unknown, of the wrong type, or has an impossible value."""


class DatasetError(MipNerfError):
    """A dataset file or folder is missing, unreadable or malformed."""


class CheckpointError(MipNerfError):
    """No checkpoint to restore, or a checkpoint that does not fit the model."""


class Interrupted(MipNerfError):
    """Training stopped on Ctrl-C (exit code 130) or SIGTERM (143) after saving a checkpoint.

    `state` is the train state that was saved.
    """

    prefix = ""

    def __init__(self, message: str, signal_number: int, state=None):
        super().__init__(message)
        self.exit_code = 128 + signal_number
        self.state = state


class LpipsUnavailable(MipNerfError):
    """The LPIPS networks cannot be loaded: their package is missing or its weights file unreadable."""
