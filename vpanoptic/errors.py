"""Exception types.

`UserError` and its subclasses are mistakes a user can fix (a missing file, a bad config
key, an unknown model name). The CLI prints their message as one line and exits with
status 2. Anything else is a bug or an environment failure and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by user input; its message is shown as one line by the CLI."""


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or out-of-range value."""


class SourceError(UserError):
    """An input that cannot be opened or decoded (missing, not a video, ...)."""


class ModelError(UserError):
    """Unknown model name, bad model option, missing or corrupt weights."""


class StageError(RuntimeError):
    """An exception raised inside a pipeline stage, re-raised by `Pipeline.run()`.

    `stage` names the stage ("decode", "inference", "tracker", "sink:video", ...); the
    original exception is chained as `__cause__`.
    """

    def __init__(self, stage: str, error: BaseException):
        self.stage = stage
        self.error = error
        super().__init__(f"stage '{stage}' failed: {type(error).__name__}: {error}")
