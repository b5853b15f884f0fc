"""Exceptions whose messages name the fix.

The CLI turns any :class:`EdgeRestoreError` into one line on stderr and a
non-zero exit code; everything else is a bug and keeps its traceback.
Python 3.6-safe: the board runtime imports this module.
"""


class EdgeRestoreError(Exception):
    """Base class: a problem the user can fix; ``str(err)`` says how."""

    exit_code = 1


class InputNotFoundError(EdgeRestoreError):
    """A file, folder or device that the user named does not exist."""

    exit_code = 2


class UnsupportedInputError(EdgeRestoreError):
    """The input exists but is not something we can read (not a video, not an image...)."""

    exit_code = 2


class UnknownNameError(EdgeRestoreError):
    """An unknown preset, target, backend or URI scheme; the message lists the valid ones."""

    exit_code = 2

    def __init__(self, kind, name, valid, hint=None):
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super(UnknownNameError, self).__init__(
            "unknown {} {!r}; choose one of: {}{}".format(kind, name, ", ".join(self.valid),
                                                         " — " + hint if hint else "")
        )


class CheckpointError(EdgeRestoreError):
    """A checkpoint that is truncated, of another architecture, or otherwise unusable."""

    exit_code = 3


class BackendUnavailableError(EdgeRestoreError):
    """A backend whose library is missing or cannot run here."""

    exit_code = 4


class BundleError(EdgeRestoreError):
    """A bundle whose manifest or files are wrong (hash mismatch, other target...)."""

    exit_code = 5


class ConfigError(EdgeRestoreError):
    """An invalid configuration value; the message names the key and the accepted values."""

    exit_code = 6


class DeviceError(EdgeRestoreError):
    """A camera or display that is missing, busy or disconnected."""

    exit_code = 7


class OutputError(EdgeRestoreError):
    """An output that cannot be written: a read-only folder, a path under a file, a folder that
    cannot be created, a full disk."""

    exit_code = 8
